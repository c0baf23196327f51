"""The store's write methods the controller's worker uses for each typed effect (real SQLite and PostgreSQL)."""

from __future__ import annotations

import sqlite3

import pytest

from contract import payloads
from controller import effects as fx
from controller import store_reads
from controller.store import Store, connect


@pytest.fixture(params=["sqlite", "postgresql"])
def store(request, tmp_path):
    """The same store tests against both backends: the SQLite file and a private PostgreSQL."""
    s = Store(tmp_path, request.getfixturevalue("postgres_url") if request.param == "postgresql" else None)
    yield s
    s.close()


def test_each_effect_kind_has_its_store_method(store):
    with store.tx() as s:
        s.insert_command({"id": "c1", "kiosk_id": "K1", "name": "test_print", "args": {}, "issuer": "ops",
                          "issued_at": 1.0, "expires_at": 9.0, "timeout": 5.0, "status": "queued"})
        a = s.raise_alarm("K1", "paper_out", "printer", "warning", "paper out", 2.0)
        s.raise_alarm("K2", "paper_out", "printer", "warning", "paper out", 2.0)
        event = payloads.parse_event(payloads.event("K1", event_id="e1", boot_id="b", seq=1, ts=3.0, type="door",
                                                        fields={}))
        assert s.record_events([fx.EventReceived("K1", event, 3.0), fx.EventReceived("K1", event, 3.5)]) == 1
        s.record_history([fx.HistorySample("K1", 4.0, {"cpu": 12, "memory": True})])
        s.update_command("c1", status="sent", sent_at=5.0)
        s.finish_command("c1", "succeeded", 6.0, "", {"printed": True})
        s.clear_alarms("K1", "paper_out", "printer", 7.0)
    assert store.command_exists("c1") and not store.command_exists("c2")
    assert store.alarm_exists(a) and not store.alarm_exists(a + 10)
    assert [(r["kiosk_id"]) for r in store.open_alarms()] == ["K2"]
    row = store.conn.execute("SELECT status, finished_at, result FROM commands WHERE id='c1'").fetchone()
    assert tuple(row) == ("succeeded", 6.0, '{"printed":true}')
    with store.tx() as s:  # counters add up, groups and sites upsert, config versions grow
        s.bump_counters({"received": 2})
        s.bump_counters({"received": 3, "rejected": 1})
        s.set_groups("north", ["K1", "K2"], True)
        s.set_groups("north", ["K1"], True)
        s.set_site("tianhe-01", "Tianhe", "Guangzhou")
        s.set_site("tianhe-01", "Tianhe 1", "Guangzhou")
        assert (s.set_layer("fleet", {"volume": 1}, "ops", 8.0), s.set_layer("fleet", {"volume": 2}, "ops", 9.0)) \
            == (1, 2)
    assert dict(store.conn.execute("SELECT name, value FROM counters").fetchall()) == {"received": 5, "rejected": 1}
    assert store.conn.execute("SELECT COUNT(*) FROM kiosk_groups").fetchone()[0] == 2
    assert tuple(store.conn.execute("SELECT name, region FROM sites").fetchone()) == ("Tianhe 1", "Guangzhou")
    assert [dict(r)["version"] for r in store.conn.execute("SELECT * FROM config_layers")] == [2]
    audit = store_reads.audit_log(store.conn)["items"]
    assert [(r["user"], r["action"], r["target"], r["result"]) for r in audit] == [
        ("ops", "command.result", "kiosk:K1", "succeeded")]
    hist = store.conn.execute("SELECT cpu, memory FROM telemetry_history").fetchone()
    assert tuple(hist) == (12.0, None)  # a boolean is not a number


def test_begin_fails_cleanly_when_the_database_stays_locked(tmp_path):
    store = Store(tmp_path)
    other = connect(tmp_path, autocommit=False)
    other.execute("BEGIN IMMEDIATE")  # kioskctl holding the write lock
    store.conn.execute("PRAGMA busy_timeout = 50")
    with pytest.raises(sqlite3.OperationalError):
        store.begin()
    other.rollback()
    with store.begin() as s:  # the store's own lock was released: the next batch goes through
        s.audit("ops", "x", "y", {}, "ok", 1.0)
    assert store.lock.acquire(blocking=False)


def _event(i: int) -> fx.EventReceived:
    body = payloads.event("K1", event_id=f"e{i}", boot_id="b", seq=i, ts=float(i), type="door", fields={"n": i})
    return fx.EventReceived("K1", payloads.parse_event(body), float(i))


def test_events_skip_ids_already_stored_across_batches_and_a_rolled_back_batch_leaves_nothing(store):
    # On PostgreSQL the batch goes through COPY into a staging table: the count of new rows and the
    # skipping of stored ids must be what the per-row INSERT gave, and nothing may stay staged.
    with store.tx() as s:
        assert s.record_events([_event(1), _event(2)]) == 2
        assert s.record_events([_event(2), _event(3), _event(3)]) == 1
    with pytest.raises(RuntimeError), store.tx() as s:
        assert s.record_events([_event(4)]) == 1
        raise RuntimeError("the batch lost a race")
    with store.tx() as s:
        assert s.record_events([_event(3), _event(4)]) == 1  # e4 was rolled back: new again
    rows = store.conn.execute("SELECT id, seq, ts, body FROM events ORDER BY id").fetchall()
    assert [(r[0], r[1], r[2]) for r in rows] == [("e1", 1, 1.0), ("e2", 2, 2.0), ("e3", 3, 3.0), ("e4", 4, 4.0)]
    assert all('"n":' in r[3] or '"n": ' in r[3] for r in rows)
    if store.conn.__class__.__name__ == "PgConnection":
        assert store.conn.execute("SELECT COUNT(*) FROM events_in").fetchone()[0] == 0
