"""The liveness sweep's schedule (controller.stale_watch): it must call stale exactly the kiosks,
at exactly the ticks, that a walk over every kiosk would (the sweep before the schedule)."""

from __future__ import annotations

import copy

from hypothesis import given, settings
from hypothesis import strategies as st

from contract import payloads, topics
from controller import alarms, handlers
from controller.stale_watch import StaleWatch

KIOSKS = ("K0", "K1", "K2")
RULES = alarms.load_rules()


def _walk_tick(state: handlers.FleetState, now: float) -> None:
    """The reference: the sweep as it was, every record looked at on every tick."""
    limit = state.telemetry_period * state.stale_after_periods
    for kiosk_id, rec in state.kiosks.items():
        if state.listening_since is None:
            break
        heard = max(rec["last_seen"], state.listening_since)
        if rec["state"] == "online" and now - heard > limit:
            handlers._set_state(state, rec, "stale", f"no telemetry for {now - rec['last_seen']:.0f} s", now)
            state.dirty.add(kiosk_id)


def _msg(kiosk_id: str, kind: str, body: dict) -> topics.Parsed:
    return topics.parse(topics.topic(kiosk_id, kind), topics.encode(body))


def _apply(state: handlers.FleetState, op: tuple, now: float, *, reference: bool) -> None:
    kind, kiosk = op[0], op[1]
    if kind == "birth":
        handlers.handle(state, _msg(kiosk, "status", {"state": "online", "boot_id": "b"}), now)
    elif kind == "will":
        handlers.handle(state, _msg(kiosk, "status", {"state": "offline", "reason": "lwt", "boot_id": "b"}), now)
    elif kind == "reading":
        handlers.handle(state, _msg(kiosk, "telemetry", {"uptime": 1, "cpu": 5.0}), now)
    elif kind == "tick":
        if reference:
            _walk_tick(state, now)
        else:
            handlers.tick(state, now)
    elif kind == "deaf":
        state.listening_since = None
    elif kind == "connected":
        state.listening_since = now
    elif kind == "restore" and kiosk in state.kiosks:
        # The store gives back an older copy of the record (a refused write, another instance's row).
        older = {**state.kiosks[kiosk], "last_seen": state.kiosks[kiosk]["last_seen"] - op[2]}
        handlers.adopt(state, [older])


OPS = st.one_of(
    st.tuples(st.sampled_from(["birth", "will", "reading", "tick", "tick", "tick", "deaf", "connected"]),
              st.sampled_from(KIOSKS)),
    st.tuples(st.just("restore"), st.sampled_from(KIOSKS), st.sampled_from([0.0, 5.0, 40.0])),
)
# Steps around the limit (3 periods of 10 s): exactly on it, just under and just over it, and
# now and then a clock that steps back.
STEPS = st.sampled_from([0.0, 0.1, 1.0, 9.9, 10.0, 29.9, 30.0, 30.1, 31.0, 45.0, -2.0, -20.0])


@settings(max_examples=400, deadline=None)
@given(st.lists(st.tuples(STEPS, OPS), min_size=1, max_size=60))
def test_the_schedule_calls_stale_exactly_what_the_full_walk_does(steps):
    fast = handlers.FleetState(telemetry_period=10, stale_after_periods=3, rules=RULES)
    slow = copy.deepcopy(fast)
    now = 1000.0
    for step, op in steps:
        now += step
        _apply(fast, op, now, reference=False)
        _apply(slow, op, now, reference=True)
        assert {k: (r["state"], r["reason"], r["state_since"]) for k, r in fast.kiosks.items()} == \
            {k: (r["state"], r["reason"], r["state_since"]) for k, r in slow.kiosks.items()}, (step, op)
        assert fast.open_alarms.keys() == slow.open_alarms.keys()
        # Every online kiosk has a pending check (or the sweep could never reach it).
        assert all(k in fast.stale_watch for k, r in fast.kiosks.items() if r["state"] == "online")


def test_a_tick_touches_only_the_kiosks_that_may_be_stale():
    state = handlers.FleetState(telemetry_period=10, stale_after_periods=3, rules=RULES)
    handlers.adopt(state, [{"kiosk_id": f"K{i}", "state": "online", "reason": "", "last_seen": 100.0 + i,
                            "state_since": 0.0} for i in range(1000)])
    assert len(state.stale_watch) == 1000
    assert state.stale_watch.due(130.0, 30.0) == []  # nobody silent for more than 30 s yet
    assert state.stale_watch.due(131.5, 30.0) == ["K0", "K1"]  # only those two popped, in time order
    assert len(state.stale_watch) == 998


def test_an_earlier_time_replaces_a_pending_later_one_and_left_overs_are_skipped():
    watch = StaleWatch()
    watch.watch("A", 50.0)
    watch.watch("A", 60.0)  # later: the pending check at 50 stays (it re-checks the record then)
    watch.watch("A", 40.0)  # earlier: replaces it
    assert watch.due(75.0, 30.0) == ["A"] and len(watch) == 0
    assert watch.due(1000.0, 30.0) == []  # the left-over entry at 50 is not a second check
    for i in range(500):  # a record adopted again and again leaves left-overs: they are compacted
        watch.watch("B", 1000.0 - i)
    assert len(watch._heap) < 200


def test_telemetry_of_an_unknown_kiosk_is_watched_once_it_is_online():
    state = handlers.FleetState(telemetry_period=10, stale_after_periods=3, rules=RULES)
    handlers.handle(state, _msg("K9", "telemetry", payloads.telemetry(
        "K9", ts=1.0, uptime=1, cpu=1.0, memory=1.0, disk=1.0, temperature=30.0, enclosure_temperature=None,
        devices={}, queue_depth=0, mode="normal")), 100.0)
    assert state.kiosks["K9"]["state"] == "online" and "K9" in state.stale_watch
    handlers.tick(state, 130.1)
    assert state.kiosks["K9"]["state"] == "stale" and "K9" not in state.stale_watch


def test_a_clock_that_steps_back_does_not_delay_the_stale_call():
    fast = handlers.FleetState(telemetry_period=10, stale_after_periods=3, rules=RULES)
    slow = copy.deepcopy(fast)
    # Online at 1000, heard at 1020, re-checked at 1030.1 (watched again from 1020); then the
    # clock steps back 20 s and the next reading comes at 1010.1: silent too long after 1040.1.
    for now, op in [(1000.0, ("birth", "K0")), (1020.0, ("reading", "K0")), (1030.1, ("tick", "K0")),
                    (1010.1, ("reading", "K0")), (1040.2, ("tick", "K0"))]:
        _apply(fast, op, now, reference=False)
        _apply(slow, op, now, reference=True)
    assert slow.kiosks["K0"]["state"] == "stale"
    assert fast.kiosks["K0"]["state"] == "stale"
