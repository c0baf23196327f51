"""``controller.server.deciding_first``: which messages of a gathered batch go in the small first
transaction (results, statuses, device states; not telemetry or events), without reordering any
kiosk's own messages."""

from __future__ import annotations

import paho.mqtt.client as mqtt

from contract import topics
from controller import server
from controller.server import deciding_first


def _m(kiosk_id: str, kind: str) -> mqtt.MQTTMessage:
    return mqtt.MQTTMessage(topic=topics.topic(kiosk_id, kind).encode())


def _names(items: list) -> list[str]:
    return [i.topic if isinstance(i, mqtt.MQTTMessage) else "call" for i in items]


def test_results_and_faults_go_ahead_of_the_readings_gathered_before_them():
    readings = [_m(f"K-{i}", "telemetry") for i in range(5)]
    result, fault = _m("K-R", "cmd/reboot/result"), _m("K-F", "devices/printer")
    event = _m("K-E", "events")
    first, rest = deciding_first([*readings, result, event, fault])
    assert first == [result, fault]
    assert rest == [*readings, event]


def test_a_kiosks_own_messages_keep_their_order():
    reading, status = _m("K-1", "telemetry"), _m("K-1", "status")  # the status follows the kiosk's reading
    call = (lambda store, now, out: None, None, ("K-2",))  # a command queued for K-2 through the API
    result_2 = _m("K-2", "cmd/reboot/result")
    other = _m("K-3", "status")
    first, rest = deciding_first([reading, status, call, result_2, other])
    assert _names(first) == [other.topic]
    assert _names(rest) == [reading.topic, status.topic, "call", result_2.topic]


def test_a_batch_of_one_kind_or_a_storm_of_births_is_not_split(monkeypatch):
    births = [_m(f"K-{i}", "status") for i in range(5)]
    assert deciding_first(births) == (births, [])
    readings = [_m(f"K-T{i}", "telemetry") for i in range(3)]
    assert deciding_first(readings) == (readings, [])
    monkeypatch.setattr(server, "FIRST_BATCH", 5)
    assert deciding_first([*readings, *births]) == ([*births], [*readings])
    storm = [*readings, *births, _m("K-6", "status")]
    assert deciding_first(storm) == (storm, [])
