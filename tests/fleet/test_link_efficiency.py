"""The metered-link telemetry (contract 1.2) between the real agent and the real controller on
Mosquitto: a full snapshot first and every FULL_EVERY-th message, deltas between, sent under a
topic alias, merged by the controller into the whole picture; full snapshots only towards a
controller that does not say it reads 1.2."""

from __future__ import annotations

import json

from contract import payloads, topics

from .conftest import wait_until

K = "K-LINK"


def _telemetry(raw) -> list[dict]:
    return [json.loads(p) for t, p in list(raw.messages) if t == topics.topic(K, "telemetry")]


def test_deltas_between_snapshots_reach_the_controller_whole(make_controller, make_kiosk, raw):
    ctl = make_controller()
    watch = raw()
    watch.subscribe(topics.topic(K, "telemetry"))
    kiosk = make_kiosk(K, ctl.public_key(), telemetry_interval=0.2)
    n = payloads.FULL_EVERY + 3
    wait_until(lambda: len(_telemetry(watch)) >= n, 30, f"{n} telemetry messages")
    sent = _telemetry(watch)[:n]
    # The broker delivers them under the full topic name: the kiosk's alias was resolved there.
    assert kiosk.agent._alias_max >= 1 and kiosk.agent._alias_gen == kiosk.agent._gen
    full = [i for i, body in enumerate(sent) if not body.get("delta")]
    assert full[:2] == [0, payloads.FULL_EVERY], f"snapshots at {full}"
    assert all("kiosk_id" not in b and "uptime" not in b for b in sent if b.get("delta"))
    assert all(len(topics.encode(b)) < len(topics.encode(sent[0])) for b in sent if b.get("delta"))
    row = wait_until(lambda: (ctl.kiosk(K) or {}).get("telemetry"), 10, "telemetry stored")
    # The controller's merged view has everything a snapshot has, whatever the last message carried.
    assert row["uptime"] is not None and row["mode"] == "normal" and row["disk"] is not None


def test_a_controller_that_does_not_read_deltas_gets_snapshots(make_kiosk, raw):
    watch = raw("watch-11")
    watch.subscribe(topics.topic(K, "telemetry"))
    # A 1.1 controller's retained presence, byte for byte as docs/mqtt.md gave it: no "contract".
    raw("ctl-11").publish(topics.CONTROLLER_STATUS, b'{"v":1,"state":"online","ts":5.0}', retain=True)
    kiosk = make_kiosk(K, telemetry_interval=0.2)
    wait_until(lambda: kiosk.agent.controller_online, 10, "controller presence read")
    count = len(_telemetry(watch))
    wait_until(lambda: len(_telemetry(watch)) >= count + payloads.FULL_EVERY + 2, 30, "telemetry")
    assert not [b for b in _telemetry(watch) if b.get("delta")]
