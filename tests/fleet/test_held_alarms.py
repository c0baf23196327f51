"""Alarm rules with a hold (``for``): pure evaluation, the handlers' held conditions and the tick.

Soak (issue 17): an unplugged or garbled printer showed ``unknown`` and raised no alarm. The rule
``device_unreachable`` raises once the device has been unreachable for its hold, and clears as
soon as it answers again.
"""

from __future__ import annotations

import pytest

from contract import device_status, topics
from controller import alarms, handlers
from foundation.errors import ConfigError

UNPLUGGED = device_status.build("unknown", device_status.printer_detail(known=False, connected=False))
GARBLED = device_status.build("unknown", device_status.printer_detail(known=False))
FINE = device_status.build("idle", device_status.printer_detail(known=True, paper="ok", cover_open=False))


def _rule():
    return next(r for r in alarms.load_rules() if r.id == "device_unreachable")


def _device(status, kiosk="K1"):
    return topics.parse(f"kiosk/v1/{kiosk}/devices/printer", topics.encode(device_status.body(kiosk, status)))


def _state():
    return handlers.FleetState(telemetry_period=60, stale_after_periods=3, rules=alarms.load_rules())


def _keys(state):
    return sorted(k[1] for k in state.open_alarms)


def test_the_packaged_rule_holds_30_s_for_unplugged_and_garbled_devices():
    rule = _rule()
    assert (rule.hold, rule.severity, rule.device) == (30.0, "major", "*")
    assert rule.matches(UNPLUGGED, False) and rule.matches(GARBLED, False) and not rule.matches(FINE, False)


def test_a_held_condition_answers_hold_then_release_never_raise():
    rules = alarms.load_rules()
    key = ("K1", "device_unreachable", "printer")
    changes = alarms.evaluate(rules, "device", "K1", "printer", UNPLUGGED, {})
    # One fault, one alarm: while unreachable is held, device_error (the fallback) stays quiet too.
    assert [(c.action, c.key) for c in changes] == [("hold", key)]
    assert changes[0].params == {"device": "printer", "fault": "disconnected"}
    assert alarms.evaluate(rules, "device", "K1", "printer", GARBLED, {}, {key}) == []  # still held
    assert [(c.action, c.key) for c in alarms.evaluate(rules, "device", "K1", "printer", FINE, {}, {key})] == [
        ("release", key)]
    # Raised: the condition false clears it at once.
    assert [(c.action, c.key) for c in alarms.evaluate(rules, "device", "K1", "printer", FINE, {key: {}})] == [
        ("clear", key)]


def test_held_due_raises_after_the_hold_and_releases_orphans():
    rules = alarms.load_rules()
    key = ("K1", "device_unreachable", "printer")
    held = {key: {"since": 100.0, "severity": "major", "message": "m", "params": {"device": "printer"}}}
    assert alarms.held_due(rules, held, {}, 129.9) == []
    [change] = alarms.held_due(rules, held, {}, 130.0)
    assert (change.action, change.key, change.params) == ("raise", key, {"device": "printer"})
    assert [c.action for c in alarms.held_due(rules, held, {key: {}}, 130.0)] == ["release"]  # raised meanwhile
    gone = {("K1", "no_such_rule", "printer"): held[key]}
    assert [c.action for c in alarms.held_due(rules, gone, {}, 130.0)] == ["release"]


def test_the_tick_raises_a_held_condition_without_a_new_message_and_it_clears_on_replug():
    s = _state()
    s, _ = handlers.handle(s, _msg_online(), 100.0)
    s, _ = handlers.handle(s, _device(UNPLUGGED), 101.0)
    key = ("K1", "device_unreachable", "printer")
    assert key in s.held and _keys(s) == []
    s, _ = handlers.handle(s, _device(GARBLED), 110.0)  # still unreachable: the hold keeps its start
    assert s.held[key]["since"] == 101.0
    s, _ = handlers.tick(s, 130.9)
    assert _keys(s) == []
    s, _ = handlers.tick(s, 131.0)
    assert _keys(s) == ["device_unreachable"] and key not in s.held
    assert [(e.change.action, e.at) for e in s.effects if hasattr(e, "change")][-1] == ("raise", 131.0)
    s, _ = handlers.handle(s, _device(FINE), 140.0)
    assert _keys(s) == [] and key not in s.held


def test_a_blip_shorter_than_the_hold_raises_nothing():
    s = _state()
    s, _ = handlers.handle(s, _msg_online(), 100.0)
    s, _ = handlers.handle(s, _device(UNPLUGGED), 101.0)
    s, _ = handlers.handle(s, _device(FINE), 120.0)
    s, _ = handlers.tick(s, 200.0)
    assert _keys(s) == [] and not s.held
    actions = [e.change.action for e in s.effects if hasattr(e, "change")]
    assert actions == ["hold", "release"]


@pytest.mark.parametrize("rule", [
    'source="device"\nfield="fault"\nfor="30"', 'source="device"\nfield="fault"\nfor=-1',
    'source="device"\nfield="fault"\nfor=true', 'source="device"\nfield="fault"\nfor=100000',
    'source="event"\nevent="e"\nfor=5',  # an event rule cannot hold: it has clear_after
])
def test_a_bad_hold_is_named(tmp_path, rule):
    bad = tmp_path / "rules.toml"
    bad.write_text(f'[[rule]]\nid="x"\nseverity="major"\nmessage="m"\n{rule}\n')
    with pytest.raises(ConfigError, match=r"rule\[0\]\.for"):
        alarms.load_rules(bad)


def _msg_online():
    return topics.parse("kiosk/v1/K1/status", topics.encode({"state": "online", "boot_id": "b"}))
