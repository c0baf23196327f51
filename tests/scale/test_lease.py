"""The singleton-jobs lease (``controller.lease``) on a real PostgreSQL, and the settings and
subscriptions that make a controller one of several."""

from __future__ import annotations

import pytest

from contract import topics
from controller import fleet_share, lease, store_pg
from foundation.errors import ConfigError
from foundation.settings import ControllerConfig, from_mapping
from tests.support.waiting import wait_until


def test_one_holder_and_the_lease_passes_when_its_connection_dies(postgres_url):
    def connect():
        return store_pg.PgConnection(fleet_share.with_keepalives(postgres_url))

    a, b = lease.PgLease(connect), lease.PgLease(connect)
    try:
        assert a.held(100.0) and not b.held(100.0)
        assert a.held(100.5) and not b.held(100.5)  # between tries nobody asks the database
        assert a.conn is not None
        a.conn.raw.close()  # as when the holder's process is killed: its session ends
        assert not b.held(100.9)  # b tries again only after `retry`
        # The server ends the dead session a moment later: b takes the lease at one of its tries.
        tries = iter(range(101, 10_000))
        wait_until(lambda: b.held(float(next(tries))), 10, "b takes the lease")
        assert b.acquired == 1
        now = float(next(tries))
        assert not a.held(now)  # a's renewal fails on the dead connection: it gives the lease up
        assert not a.held(now + 1)  # and tries again, but b holds it
        b.close()
        wait_until(lambda: a.held(float(next(tries))), 10, "a takes the lease back")
        assert a.acquired == 2
    finally:
        a.close()
        b.close()


def test_the_sole_controller_always_holds():
    assert lease.SoleLease().held(0.0)


def test_an_instance_shares_the_kiosk_topics_and_needs_postgresql(tmp_path):
    base = {"broker": "mqtt://127.0.0.1:1883", "data_dir": str(tmp_path)}
    one = from_mapping(ControllerConfig, base)
    assert not one.shared and one.mqtt_client_id == "kiosk-controller"
    assert topics.subscriptions_for_controller() == topics.subscriptions_for_controller("")
    assert all(not t.startswith("$share/") for t, _ in topics.subscriptions_for_controller())
    with pytest.raises(ConfigError) as err:
        from_mapping(ControllerConfig, {**base, "instance": "a"})
    assert err.value.field == "database"
    with pytest.raises(ConfigError) as err:
        from_mapping(ControllerConfig, {**base, "instance": "a/b", "database": "postgresql://x@h/db"})
    assert err.value.field == "instance"
    a = from_mapping(ControllerConfig, {**base, "instance": "a", "database": "postgresql://x@h/db"})
    assert a.shared and a.mqtt_client_id == "controller-a"
    subs = topics.subscriptions_for_controller(a.share_group)
    kiosk_topics = [t for t, _ in topics.subscriptions_for_controller()]
    assert [t for t, _ in subs] == [f"$share/controllers/{t}" for t in kiosk_topics] + [topics.CONTROLLER_STATUS]
