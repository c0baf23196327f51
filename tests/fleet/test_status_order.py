"""Issue 16: a late status of an older connection never overwrites a newer one, whichever controller
instance handles it: the connection stamp (contract), the ordering decision (handlers) and the
stamp's column on both store backends (real SQLite and PostgreSQL)."""

from __future__ import annotations

import json
import sqlite3

import pytest

from contract import payloads, topics
from controller import alarms, handlers
from controller.store import Store
from foundation.errors import RemoteProtocolError
from foundation.settings import KioskConfig, from_mapping
from kiosk_ui.agent.agent import KioskAgent


def _state(kiosks=None):
    return handlers.FleetState(kiosks=kiosks or {}, telemetry_period=10, stale_after_periods=3,
                               rules=alarms.load_rules())


def _status(body):
    return topics.parse("kiosk/v1/K1/status", topics.encode(body))


def _birth(stamp, boot_id="b1", ts=10.0):
    return _status(payloads.birth("K1", mode="normal", boot_id=boot_id, site="", versions={}, devices=[], ts=ts,
                                  stamp=stamp))


def _will(stamp, boot_id="b1", reason="lwt"):
    return _status(payloads.offline("K1", boot_id, reason, stamp))


def test_connection_stamp_grows_even_when_the_clock_steps_back():
    first = payloads.connection_stamp(1_764_000_000.0, None)
    assert first == 1_764_000_000_000
    assert payloads.connection_stamp(1_764_000_000.0, first) == first + 1  # two connects in one ms
    assert payloads.connection_stamp(1_000.0, first) == first + 1  # the clock went back
    assert payloads.connection_stamp(1_764_000_005.0, first) == 1_764_000_005_000


def test_stamp_is_optional_and_checked():
    assert _will(None).model.stamp is None and "stamp" not in payloads.offline("K1", "b", "lwt")
    assert _birth(7).model.stamp == 7 and _will(7).model.stamp == 7
    for bad in ("12", 1.5, -1, True, 2**63):
        with pytest.raises(RemoteProtocolError, match="stamp"):
            topics.parse("kiosk/v1/K1/status", topics.encode({**payloads.offline("K1", "b", "lwt"), "stamp": bad}))


def test_old_connections_will_after_the_new_birth_is_ignored_and_counted():
    s = _state()
    s, _ = handlers.handle(s, _birth(100), 1.0)
    s, _ = handlers.handle(s, _birth(200), 2.0)  # the same boot connected again
    s, _ = handlers.handle(s, _will(100), 3.0)  # the broker's will of the first connection, late
    assert s.kiosks["K1"]["state"] == "online" and s.kiosks["K1"]["status_stamp"] == 200
    assert s.counts == {"status_superseded": 1}
    s, _ = handlers.handle(s, _will(200), 4.0)  # the will of the current connection counts
    assert s.kiosks["K1"]["state"] == "offline" and s.kiosks["K1"]["reason"] == "lwt"


def test_late_birth_of_an_older_connection_is_ignored():
    s = _state()
    s, _ = handlers.handle(s, _birth(200, ts=20.0), 1.0)
    s, _ = handlers.handle(s, _will(200, reason="shutdown"), 2.0)
    s, _ = handlers.handle(s, _birth(100, ts=10.0), 3.0)
    assert s.kiosks["K1"]["state"] == "offline" and s.kiosks["K1"]["status_stamp"] == 200
    assert s.counts == {"status_superseded": 1}


def test_will_before_the_new_birth_and_kiosks_without_stamps_behave_as_before():
    s = _state()
    s, _ = handlers.handle(s, _birth(100), 1.0)
    s, _ = handlers.handle(s, _will(100), 2.0)
    s, _ = handlers.handle(s, _birth(200), 3.0)
    assert s.kiosks["K1"]["state"] == "online" and not s.counts
    # An older kiosk (no stamp): its will is applied as before, even after a stamped birth.
    s, _ = handlers.handle(s, _will(None), 4.0)
    assert s.kiosks["K1"]["state"] == "offline"
    s, _ = handlers.handle(s, _birth(None), 5.0)
    assert s.kiosks["K1"]["state"] == "online" and s.kiosks["K1"]["status_stamp"] == 200


@pytest.fixture(params=["sqlite", "postgresql"])
def store(request, tmp_path):
    s = Store(tmp_path, request.getfixturevalue("postgres_url") if request.param == "postgresql" else None)
    yield s
    s.close()


def test_the_stamp_is_stored_so_another_instance_ignores_the_late_will(store):
    a = _state()
    a, _ = handlers.handle(a, _birth(1_764_000_000_123), 1.0)
    big = {**a.kiosks["K1"], "kiosk_id": "K2", "status_stamp": payloads.STAMP_MAX}
    with store.tx() as s:
        s.upsert_kiosks([a.kiosks["K1"], big])
    loaded = {r["kiosk_id"]: r for r in store.load_kiosks()}
    assert loaded["K1"]["status_stamp"] == 1_764_000_000_123 and loaded["K2"]["status_stamp"] == payloads.STAMP_MAX
    # Instance B knows the kiosk only from the store (no status_ts: that one is not persisted).
    b = _state({"K1": loaded["K1"]})
    b, _ = handlers.handle(b, _will(1_764_000_000_000), 2.0)
    assert b.kiosks["K1"]["state"] == "online" and b.counts == {"status_superseded": 1}
    # A record written without a stamp (an older kiosk) stores NULL and orders nothing.
    with store.tx() as s:
        s.upsert_kiosks([{**a.kiosks["K1"], "status_stamp": None}])
    assert store.load_kiosks()[0]["status_stamp"] is None


def test_the_agent_stamps_each_connection_and_keeps_growing_across_restarts(broker, raw, tmp_path):
    """A real agent on the real broker: the stamp of its connection is in its retained birth, and a
    restart with the clock stepped back (same data_dir) still gets a larger one from the journal."""
    cfg = from_mapping(KioskConfig, {"kiosk_id": "K1", "broker": broker.url, "keepalive": 2,
                                     "data_dir": str(tmp_path / "kiosk")})
    watcher = raw("watcher")
    watcher.subscribe("kiosk/v1/K1/status")
    stamps = []
    for now in (2_000_000_000.0, 1_000_000_000.0):
        agent = KioskAgent(cfg, clock=lambda n=now: n)
        agent.start(wait=10)
        try:
            stamps.append(agent.stamp)
            watcher.wait_json(lambda _t, body, a=agent: body.get("state") == "online" and body.get("stamp") == a.stamp)
        finally:
            agent.stop()
        # The clean stop carries the stamp of the connection it ends.
        watcher.wait_json(lambda _t, body: body.get("reason") == "shutdown" and body.get("stamp") == stamps[-1])
    assert stamps == [2_000_000_000_000, 2_000_000_000_001]


def test_a_journal_that_cannot_be_written_does_not_stop_the_reconnect(tmp_path, monkeypatch):
    """Unit test (the journal's write and paho's connect replaced): a full disk still gives each
    connection a larger stamp, in its will too, and the agent still connects."""
    cfg = from_mapping(KioskConfig, {"kiosk_id": "K1", "broker": "mqtt://127.0.0.1:1", "data_dir": str(tmp_path)})
    agent = KioskAgent(cfg, clock=lambda: 1_000.0)

    def full(*_a):
        raise sqlite3.OperationalError("database or disk is full")

    connects = []
    monkeypatch.setattr(agent.journal, "put", full)
    monkeypatch.setattr(agent.client, "reconnect", lambda: connects.append(agent.stamp))
    agent._reconnect()
    agent._reconnect()
    assert connects == [1_000_000, 1_000_001]
    assert payloads.parse_status(json.loads(agent.client.will_payload)).stamp == 1_000_001
    agent.journal.close()
