"""``controller.batches.deciding_first``: which messages of a gathered batch go in the small first
transaction (results, statuses, device states; not telemetry or events), without reordering any
kiosk's own messages."""

from __future__ import annotations

import queue
import time

import paho.mqtt.client as mqtt

from contract import topics
from controller import batches
from controller.batches import deciding_first


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
    monkeypatch.setattr(batches, "FIRST_BATCH", 5)
    assert deciding_first([*readings, *births]) == ([*births], [*readings])
    storm = [*readings, *births, _m("K-6", "status")]
    assert deciding_first(storm) == (storm, [])


def test_while_the_readings_wait_liveness_is_judged_only_up_to_the_first_of_them():
    # The first part's transaction runs while the readings gathered with it wait in ``Controller._later``: a
    # kiosk whose reading is among them must not be judged silent past that reading's arrival.
    waiting = _m("K-1", "telemetry")
    waiting.timestamp = time.monotonic() - 5.0  # arrived 5 s ago, not handled yet
    inbox: queue.SimpleQueue = queue.SimpleQueue()
    heard = batches.caught_up([waiting], inbox, [_m("K-2", "cmd/reboot/result")], 1000.0, None)
    assert heard is not None and 994.0 <= heard <= 995.1
    # the readings handled and nothing else waiting: caught up to now
    assert batches.caught_up([], inbox, [waiting], 1000.0, None) == 1000.0
