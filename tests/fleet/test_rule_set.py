"""Alarm rules pre-filtered per source (alarms.RuleSet) decide exactly as the whole list did."""

from __future__ import annotations

import fnmatch

from hypothesis import given, settings
from hypothesis import strategies as st

from contract import device_status, payloads
from controller import alarms

RULES = alarms.load_rules()


def _whole_list(rules, source, kiosk_id, subject, data, open_keys):
    """The reference: every rule of the list filtered for each call (the evaluation before RuleSet)."""
    out = []
    mine = [r for r in rules if r.source == source and (source != "device" or fnmatch.fnmatchcase(subject, r.device))]
    on = {r.id: r.matches(data, (kiosk_id, r.id, subject) in open_keys) for r in mine}
    specific = any(on[r.id] for r in mine if not r.fallback)
    for rule in mine:
        key = (kiosk_id, rule.id, subject)
        now_on = on[rule.id] and not (rule.fallback and specific)
        if now_on != (key in open_keys):
            params = rule.parameters(data, subject)
            out.append(alarms.Change("raise" if now_on else "clear", key, rule.severity, rule.describe(params), params))
    return out


DEVICES = st.sampled_from(["printer", "printer-2", "id_reader", "card_reader", "scanner", "supervisor", ""])
STATES = st.sampled_from(["idle", "busy", "error", "closed"])
DETAILS = st.builds(device_status.DeviceDetail,
                    paper=st.sampled_from([None, "full", "low", "out", "jammed", "unknown"]),
                    cover=st.sampled_from([None, "open", "closed", "unknown"]),
                    tamper=st.sampled_from([None, True, False]))
OPEN = st.sets(st.tuples(st.just("K1"), st.sampled_from([r.id for r in RULES]), DEVICES), max_size=6)


@settings(max_examples=300, deadline=None)
@given(name=DEVICES, state=STATES, detail=DETAILS, open_keys=OPEN)
def test_device_rules_decide_as_the_whole_list(name, state, detail, open_keys):
    status = device_status.build(state, detail)
    index = alarms.RuleSet(RULES)
    for _ in range(2):  # the second call reads the device name's remembered rules
        assert alarms.evaluate(index, "device", "K1", name, status, open_keys) == \
            _whole_list(RULES, "device", "K1", name, status, open_keys)


@settings(max_examples=200, deadline=None)
@given(temperature=st.one_of(st.none(), st.floats(20, 80)), state=st.sampled_from(["online", "offline", "stale"]),
       open_keys=OPEN)
def test_telemetry_and_kiosk_rules_decide_as_the_whole_list(temperature, state, open_keys):
    reading = payloads.parse_telemetry({"uptime": 1, "enclosure_temperature": temperature})
    record = {"kiosk_id": "K1", "state": state, "reason": "lwt", "mode": "normal"}
    index = alarms.RuleSet(RULES)
    assert alarms.evaluate(index, "telemetry", "K1", "", reading, open_keys) == \
        _whole_list(RULES, "telemetry", "K1", "", reading, open_keys)
    assert alarms.evaluate(index, "kiosk", "K1", "", record, open_keys) == \
        _whole_list(RULES, "kiosk", "K1", "", record, open_keys)


def test_event_alarms_expire_by_their_rule_only():
    index = alarms.RuleSet(RULES)
    timed = next(r for r in RULES if r.source == "event" and r.clear_after)
    opened = {("K1", timed.id, ""): {"raised_at": 0.0, "message": "m"},
              ("K1", "kiosk_offline", ""): {"raised_at": 0.0, "message": "k"}}
    assert alarms.expired(index, opened, timed.clear_after - 1) == []
    assert [c.key for c in alarms.expired(index, opened, timed.clear_after)] == [("K1", timed.id, "")]


def test_device_names_remembered_are_bounded():
    index = alarms.RuleSet(RULES)
    for i in range(alarms.RuleSet.MAX_SUBJECTS + 50):  # a kiosk inventing device names
        index.of("device", f"printer-{i}")
    assert len(index._devices) == alarms.RuleSet.MAX_SUBJECTS
    assert [r.id for r in index.of("device", "printer-99999")] == [r.id for r in index.of("device", "printer-1")]
