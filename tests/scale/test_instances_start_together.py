"""Several controller instances starting at the same moment on a new PostgreSQL database.

Found by the 100,000-kiosk fleet benchmark (two instances started together): PostgreSQL's
``CREATE TABLE IF NOT EXISTS`` is not safe against a concurrent create of the same table, so one
instance died at start on a unique violation in ``pg_type`` while recording the fleet's time zone.
"""

from __future__ import annotations

import pytest

from controller import fleet_clock
from controller.store_pg import PgConnection
from tests.support.together import at_once, failures


@pytest.mark.parametrize("attempt", range(3))  # a race: each attempt on a database of its own
def test_instances_record_the_time_zone_at_once_on_a_new_database(postgres_url, attempt):
    starters = 8
    conns = [PgConnection(postgres_url) for _ in range(starters)]
    outcomes = at_once(lambda conn: fleet_clock.record(conn, "Asia/Shanghai"), conns)
    try:
        assert failures(outcomes) == []
        assert fleet_clock.recorded(conns[0]).name == "Asia/Shanghai"
    finally:
        for c in conns:
            c.close()
