"""Two transactions that take kiosk locks in two calls each, in opposite orders, deadlock:
PostgreSQL gives one up. The controller takes each transaction's locks in one statement now, but
should a batch lose such a race anyway, the worker must know that error as a lost race (its batch
is done again) rather than a failure (its batch dropped: before the one-statement lock order, seen
as births and faults never stored in the 100,000-kiosk fleet benchmark)."""

from __future__ import annotations

import threading

import psycopg
import pytest

from controller import fleet_share, sql_dialect
from controller.store_pg import PgConnection


def test_a_deadlock_between_two_instances_lock_sets_is_a_lost_race(postgres_url):
    a, b = PgConnection(postgres_url), PgConnection(postgres_url)
    both_hold_one = threading.Barrier(2)
    errors: list[BaseException] = []

    def instance(conn: PgConnection, first: str, second: str) -> None:
        try:
            with conn.raw.transaction():
                conn.execute("SET LOCAL deadlock_timeout = '100ms'")
                fleet_share.lock_kiosks(conn, [first])
                both_hold_one.wait(10)
                fleet_share.lock_kiosks(conn, [second])
        except psycopg.Error as exc:
            errors.append(exc)

    threads = [threading.Thread(target=instance, args=(a, "K-A", "K-B")),
               threading.Thread(target=instance, args=(b, "K-B", "K-A"))]
    try:
        for t in threads:
            t.start()
        for t in threads:
            t.join(30)
        assert len(errors) == 1  # PostgreSQL gave exactly one up; the other committed
        assert sql_dialect.lost_a_race(errors[0])
    finally:
        a.close()
        b.close()


@pytest.mark.parametrize("exc", [ValueError("x"), psycopg.errors.UniqueViolation("dup")])
def test_other_errors_are_not_a_lost_race(exc):
    assert not sql_dialect.lost_a_race(exc)
