"""The shared lane's decisions, pure (issue 16): which messages may take their kiosk's lock shared
(``fleet_share.needs_exclusive``), and the handler refusing, untouched, what would decide something
there (``handlers.Decides``). Several instances on PostgreSQL: tests/scale/test_lanes.py."""

from __future__ import annotations

import copy

import pytest

from contract import payloads, topics
from controller import alarms, fleet_share, handlers


def _state(**kw) -> handlers.FleetState:
    return handlers.FleetState(telemetry_period=10, stale_after_periods=3, rules=alarms.load_rules(), **kw)


def _msg(kind: str, body: dict) -> topics.Parsed:
    return topics.parse(f"kiosk/v1/K1/{kind}", topics.encode(body))


def _reading(ts: float, enclosure: float = 30.0) -> dict:
    return payloads.telemetry("K1", ts=ts, uptime=5, cpu=1.0, memory=2.0, disk=3.0, temperature=40.0,
                              enclosure_temperature=enclosure, devices={}, queue_depth=0, mode="normal")


def _event(etype: str) -> dict:
    return payloads.event("K1", event_id=f"e-{etype}", boot_id="b", seq=1, ts=1.0, type=etype, fields={})


def _online(**kw) -> handlers.FleetState:
    s = _state(**kw)
    s, _ = handlers.handle(s, _msg("status", {"state": "online", "boot_id": "b"}), 100.0)
    s, _ = handlers.handle(s, _msg("telemetry", _reading(100.0)), 100.0)
    s.dirty.clear()
    s.fresh.clear()
    s.effects.clear()
    return s


@pytest.mark.parametrize(("kind", "body", "exclusive"), [
    ("telemetry", _reading(1.0, enclosure=99.0), False),  # decided under the lock, if at all
    ("events", _event("paper_low_noted"), False),  # no rule reads this type
    ("events", _event("tamper"), True),  # a rule raises on it
    ("status", {"state": "online", "boot_id": "b"}, True),
    ("config/reported", {"version": 1, "status": "applied"}, True),
])
def test_what_may_take_its_kiosks_lock_shared(kind, body, exclusive):
    rules = alarms.RuleSet(alarms.load_rules())
    assert fleet_share.needs_exclusive(_msg(kind, body), rules) is exclusive


def test_a_message_that_did_not_parse_only_counts_a_refusal():
    assert not fleet_share.needs_exclusive(ValueError("bad"), alarms.RuleSet(()))


@pytest.mark.parametrize("name", ["unknown kiosk", "stale kiosk", "alarm raised", "event alarm"])
def test_what_would_decide_is_refused_in_the_shared_lane_and_nothing_changes(name):
    s = _state() if name == "unknown kiosk" else _online()
    if name == "stale kiosk":
        s, _ = handlers.tick(s, 200.0)
        assert s.kiosks["K1"]["state"] == "stale"
    msg = {"unknown kiosk": _msg("telemetry", _reading(150.0)), "stale kiosk": _msg("telemetry", _reading(201.0)),
           "alarm raised": _msg("telemetry", _reading(150.0, enclosure=70.0)),
           "event alarm": _msg("events", _event("tamper"))}[name]
    before = copy.deepcopy((s.kiosks, s.open_alarms, s.held, s.effects, s.dirty, s.fresh))
    with pytest.raises(handlers.Decides):
        handlers.handle(s, msg, 202.0, "shared")
    assert (s.kiosks, s.open_alarms, s.held, s.effects, s.dirty, s.fresh) == before
    s, _ = handlers.handle(s, msg, 202.0)  # the exclusive lane decides it
    assert s.dirty or s.open_alarms


def test_a_reading_that_decides_nothing_is_only_fresh_in_the_shared_lane():
    s = _online()
    s, out = handlers.handle(s, _msg("telemetry", _reading(130.0)), 130.0, "shared")
    assert out == [] and s.fresh == {"K1"} and not s.dirty and s.kiosks["K1"]["last_seen"] == 130.0


def test_an_older_reading_is_late_only_with_several_instances():
    shared = _online(ordered_readings=True)
    shared, _ = handlers.handle(shared, _msg("telemetry", _reading(90.0, enclosure=70.0)), 140.0, "shared")
    assert shared.kiosks["K1"]["telemetry"]["ts"] == 100.0 and not shared.open_alarms
    assert shared.kiosks["K1"]["last_seen"] == 140.0 and shared.counts["telemetry_late"] == 1
    alone = _online()  # one controller: every reading as it comes, as before
    alone, _ = handlers.handle(alone, _msg("telemetry", _reading(90.0)), 140.0)
    assert alone.kiosks["K1"]["telemetry"]["ts"] == 90.0
