"""Telemetry held in memory and written in bulk: nothing a reader needs is lost, nothing waits forever."""

from __future__ import annotations

import json

from contract import payloads, topics
from controller import handlers
from controller.store import Store, connect
from tests.support.waiting import wait_until


def _telemetry(kiosk: str, cpu: float) -> topics.Parsed:
    body = payloads.telemetry(kiosk, ts=100.0, uptime=5, cpu=cpu, memory=40.0, disk=10.0, temperature=45.0,
                              enclosure_temperature=None, devices={"printer": "idle"}, queue_depth=0, mode="normal")
    return topics.parse(topics.topic(kiosk, "telemetry"), topics.encode(body))


def _birth(kiosk: str) -> topics.Parsed:
    body = payloads.birth(kiosk, mode="normal", boot_id="b1", site="s1", versions={}, devices=[], ts=99.0)
    return topics.parse(topics.topic(kiosk, "status"), topics.encode(body))


def test_a_reading_alone_is_held_a_state_change_is_written_at_once():
    state = handlers.FleetState()
    state, _ = handlers.handle(state, _telemetry("K1", 10.0), 100.0)  # unknown kiosk: a new record
    assert state.dirty == {"K1"} and not state.fresh
    state.dirty.clear()
    state, _ = handlers.handle(state, _telemetry("K1", 11.0), 101.0)  # known, online: only the reading
    assert not state.dirty and state.fresh == {"K1"}
    assert state.kiosks["K1"]["telemetry"]["cpu"] == 11.0  # the latest state is in memory at once
    state.kiosks["K1"]["state"] = "stale"
    state, _ = handlers.handle(state, _telemetry("K1", 12.0), 200.0)  # stale -> online: written now
    assert state.dirty == {"K1"}


def test_update_readings_writes_only_the_reading(tmp_path):
    store = Store(tmp_path)
    try:
        rec = {"kiosk_id": "K1", "state": "online", "last_seen": 1.0, "state_since": 1.0, "site": "s1",
               "telemetry": {}, "last_telemetry": 0.0}
        with store.tx() as s:
            s.upsert_kiosks([rec])
            s.update_readings([{**rec, "state": "offline", "site": "elsewhere", "telemetry": {"cpu": 5.0},
                                "last_telemetry": 9.0, "last_seen": 9.0}])
        got = store.kiosk_record("K1")
        assert got is not None
        assert (got["state"], got["site"], got["telemetry"], got["last_telemetry"], got["last_seen"]) == (
            "online", "s1", {"cpu": 5.0}, 9.0, 9.0)
    finally:
        store.close()


def test_the_controller_writes_held_readings_within_the_window_and_on_a_clean_stop(make_controller, raw, tmp_path):
    ctl = make_controller()
    r = raw()
    r.publish(topics.topic("K-held", "status"), topics.encode(payloads.birth(
        "K-held", mode="normal", boot_id="b1", site="s1", versions={}, devices=[], ts=1.0)), retain=True)

    def stored_cpu() -> object:
        try:
            conn = connect(tmp_path / "controller", readonly=True)
        except Exception:  # noqa: BLE001 - not created yet
            return None
        try:
            row = conn.execute("SELECT telemetry FROM kiosks WHERE kiosk_id='K-held'").fetchone()
        finally:
            conn.close()
        return row and json.loads(row[0]).get("cpu")

    for cpu in (21.0, 22.0):
        body = payloads.telemetry("K-held", ts=2.0, uptime=1, cpu=cpu, memory=1.0, disk=1.0, temperature=1.0,
                                  enclosure_temperature=None, devices={}, queue_depth=0, mode="normal")
        r.publish(topics.topic("K-held", "telemetry"), topics.encode(body), qos=0)
    wait_until(lambda: stored_cpu() == 22.0, 15, "the held reading written within the bulk window")
    body = payloads.telemetry("K-held", ts=3.0, uptime=2, cpu=33.0, memory=1.0, disk=1.0, temperature=1.0,
                              enclosure_temperature=None, devices={}, queue_depth=0, mode="normal")
    r.publish(topics.topic("K-held", "telemetry"), topics.encode(body), qos=0)
    wait_until(lambda: ctl.state.kiosks["K-held"]["telemetry"]["cpu"] == 33.0, 10, "the reading in memory")
    ctl.stop()
    assert stored_cpu() == 33.0  # written by the clean stop, not lost with the process
