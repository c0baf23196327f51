"""Contract 1.2 telemetry on a metered link: full snapshots, deltas with dead bands, the merge the
controller applies, and what the controller's presence says it reads (no broker here)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from contract import payloads, topics, versions
from foundation.errors import RemoteProtocolError

K = "GD-DELTA-1"
PREVIOUS = json.loads(Path(__file__).with_name("previous_v1.json").read_text(encoding="utf-8"))


def _full(**over) -> dict:
    values = {"ts": 1000.04, "uptime": 600.4, "cpu": 10.0, "memory": 40.0, "disk": 20.0, "temperature": 50.0,
              "enclosure_temperature": 35.0, "devices": {"printer": "idle"}, "queue_depth": 0, "mode": "normal"}
    values.update(over)
    return payloads.telemetry(K, **values)


def _read(body: dict) -> payloads.Telemetry:
    return topics.parse(f"kiosk/v1/{K}/telemetry", topics.encode(body)).model


def test_a_delta_carries_only_what_moved_beyond_its_dead_band():
    held = _read(_full()).to_dict()
    delta = payloads.telemetry_delta(held, _full(ts=1030.0, uptime=630.0, cpu=14.0, memory=41.5,
                                                 devices={"printer": "error"}, queue_depth=3))
    assert delta == {"delta": True, "ts": 1030.0, "memory": 41.5, "queue_depth": 3, "devices": {"printer": "error"}}
    assert "kiosk_id" not in delta and "uptime" not in delta  # the topic names the kiosk; uptime is derived
    quiet = payloads.telemetry_delta(held, _full(ts=1030.0, uptime=630.0))
    assert quiet == {"delta": True, "ts": 1030.0}
    assert len(topics.encode(quiet)) < 40


def test_a_value_turning_null_or_back_is_a_change():
    held = _read(_full()).to_dict()
    assert payloads.telemetry_delta(held, _full(temperature=None))["temperature"] is None
    held = _read(_full(temperature=None)).to_dict()
    assert payloads.telemetry_delta(held, _full(temperature=50.0))["temperature"] == 50.0


def test_the_merge_gives_the_controller_the_whole_picture():
    base = _read(_full())
    merged = payloads.merge_telemetry(base.to_dict(), _read(payloads.telemetry_delta(
        base.to_dict(), _full(ts=1030.0, uptime=630.0, cpu=80.0, mode="maintenance"))))
    assert not merged.delta
    assert (merged.cpu, merged.memory, merged.mode, merged.devices) == (80.0, 40.0, "maintenance", {"printer": "idle"})
    assert merged.ts == 1030.0 and merged.uptime == pytest.approx(630.0, abs=0.1)  # advanced by the ts difference
    assert payloads.merge_telemetry(merged, _read(_full(cpu=1.0))).cpu == 1.0  # a snapshot replaces all


def test_a_delta_without_a_snapshot_leaves_the_rest_unknown():
    merged = payloads.merge_telemetry(None, _read({"delta": True, "ts": 5.0, "cpu": 3.0}))
    assert (merged.cpu, merged.memory, merged.uptime, merged.devices) == (3.0, None, None, {})


def test_drift_below_the_band_is_sent_once_it_adds_up():
    held = _read(_full()).to_dict()
    for cpu in (12.0, 14.0):
        assert "cpu" not in payloads.telemetry_delta(held, _full(cpu=cpu))  # compared with what was sent
    assert payloads.telemetry_delta(held, _full(cpu=15.5))["cpu"] == 15.5


@pytest.mark.parametrize("body", [{"delta": "yes", "ts": 1.0}, {"delta": True, "devices": [1]},
                                  {"delta": True, "cpu": "high"}])
def test_a_bad_delta_is_refused_naming_the_field(body):
    with pytest.raises(RemoteProtocolError, match="telemetry (delta|devices|cpu)"):
        _read(body)


def test_previous_telemetry_is_read_as_a_full_snapshot():
    model = topics.parse("kiosk/v1/GD-OLD-1/telemetry", json.dumps(PREVIOUS["telemetry"]).encode()).model
    assert not model.delta and model.cpu == 97.1
    assert payloads.merge_telemetry({"cpu": 1.0, "memory": 99.0}, model).memory == 2.9


def test_the_controller_says_which_minor_it_reads():
    body = json.loads(topics.encode_to_kiosk(payloads.controller_online(5.0)))
    assert body["v"] == versions.TO_KIOSK and payloads.controller_reads(body) == versions.parse_version(versions.CURRENT) >= payloads.DELTA_SINCE
    # A 1.1 controller's presence says nothing: the kiosk then sends full snapshots only.
    assert payloads.controller_reads({"v": 1, "state": "online", "ts": 5.0}) == (1, 1) < payloads.DELTA_SINCE
