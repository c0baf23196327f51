"""The roll-out's fleet-wide failure budget (controller/rollouts.py): however the waves are sized,
no more kiosks than the budget ever run a release that fails, and the roll-out pauses naming it."""

from __future__ import annotations

import math
import random

import pytest

from contract import updates
from controller import rollouts as RO
from controller.web import rollout_words
from controller.web.i18n import Translator
from foundation.errors import ConfigError

REL = {"version": "2.0.0", "url": "", "manifest_sha256": "a" * 64}


def fleet(n: int) -> list[dict]:
    return [{"kiosk_id": f"K{i:05d}", "state": "online", "site": "s1", "versions": {"release": "1.0.0"}}
            for i in range(n)]


def st(state: str, reason: str = "") -> updates.UpdateState:
    return updates.UpdateState(state=state, version="2.0.0", reason=reason, rollout="r1")


def planned(n: int, **kw) -> dict:
    return RO.plan(RO.new_rollout("r1", REL, created_by="a", now=0, **kw), fleet(n), {})


def run(r: dict, failing: set[str], *, seed: int = 1, limit: int = 100_000) -> tuple[dict, set[str]]:
    """Drive the roll-out as kiosks would: each kiosk sent the release switches to it, then (in a
    random order among those in flight) commits or, when in ``failing``, rolls back. Returns the
    roll-out when nothing more happens and the kiosks that switched to the release and failed."""
    rng = random.Random(seed)
    online = set(r["kiosks"])
    r, eff = RO.tick(r, 0, online)
    in_flight: list[str] = []
    ran_failing: set[str] = set()
    now = 1.0
    for _ in range(limit):
        for kind, kid in eff:
            assert kind == "update"
            r, more = RO.on_update_state(r, kid, st("switched"), now, online)
            assert more == []
            in_flight.append(kid)
            if kid in failing:
                ran_failing.add(kid)
        eff = []
        if not in_flight:
            return r, ran_failing
        kid = in_flight.pop(rng.randrange(len(in_flight)))
        now += 1
        outcome = st("rolled_back", "crashed: exit 1") if kid in failing else st("committed")
        r, eff = RO.on_update_state(r, kid, outcome, now, online)
    raise AssertionError("the roll-out did not settle")


def test_the_issue_15_fleet_goal_with_default_options():
    """1,000 kiosks, 5 % of wave 2 fail their health window: paused before more than 0.5 % of the
    fleet ran the failing release (the per-wave threshold alone let 18 of 1,000 run it)."""
    r = planned(1000, canary=10, waves=[5, 40, 100])
    wave2 = sorted(k for k, v in r["kiosks"].items() if v["wave"] == 2)
    assert len(wave2) == 346
    failing = set(wave2[:math.ceil(len(wave2) * 0.05)])
    for seed in range(5):
        end, ran = run(r, failing, seed=seed)
        assert end["status"] == "paused" and end["wave"] == 2
        assert end["reason"] == {"code": "failure_budget",
                                 "params": {"failed": 5, "targets": 1000, "budget": 0.005, "limit": 5}}
        assert len(ran) <= 5, f"{len(ran)} of 1,000 kiosks ran the failing release"


@pytest.mark.parametrize(("n", "waves", "canary"), [
    (1000, [5, 40, 100], 10), (1000, [100], 0), (1000, [1, 2, 100], 1), (200, [50, 100], 1), (26412, [10, 50, 100], 1),
    (40, [100], 0), (3, [100], 1)])
def test_whatever_the_waves_no_more_kiosks_than_the_budget_run_a_release_that_fails_everywhere(n, waves, canary):
    r = planned(n, canary=canary, waves=waves)
    end, ran = run(r, set(r["kiosks"]))
    limit = max(1, math.floor(0.005 * n))
    # A small wave's own threshold may pause it first (a canary of 10: at 1 failure); never later.
    assert end["status"] == "paused" and end["reason"]["code"] in ("failure_budget", "error_threshold")
    assert 1 <= len(ran) <= limit


def test_starts_are_paced_so_failed_and_updating_kiosks_stay_within_the_budget():
    r = planned(1000, canary=0, waves=[100], max_in_flight=50)
    r, eff = RO.tick(r, 0, set(r["kiosks"]))
    assert len(eff) == 5  # the budget (5 of 1,000), not max_in_flight (50), bounds the kiosks in flight
    assert RO.budget(r) == {"limit": 5, "failed": 0, "at_risk": 5, "targets": 1000, "share": 0.005}
    r, more = RO.on_update_state(r, eff[0][1], st("committed"), 1, set(r["kiosks"]))
    assert len(more) == 1  # a commit frees its slot
    r, more = RO.on_update_state(r, eff[1][1], st("rolled_back", "crashed: x"), 2, set(r["kiosks"]))
    assert more == [] and r["status"] == "running"  # a failure keeps its slot for good
    assert RO.budget(r)["at_risk"] == 5
    big = planned(26412, canary=0, waves=[100], max_in_flight=50)
    _, eff = RO.tick(big, 0, set(big["kiosks"]))
    assert len(eff) == 50  # a budget of 132 kiosks leaves max_in_flight in charge


def test_resume_accepts_the_failures_so_far_and_the_budget_counts_again_from_there():
    r = planned(1000, canary=0, waves=[100])
    online = set(r["kiosks"])
    r, eff = RO.tick(r, 0, online)
    for _, kid in eff:
        r, _ = RO.on_update_state(r, kid, st("failed", "disk_full"), 1, online)
    assert r["status"] == "paused" and r["reason"]["code"] == "failure_budget"
    r, eff = RO.resume(r, 2, online)
    assert r["status"] == "running" and len(eff) == 5 and RO.budget(r)["failed"] == 0
    r, more = RO.on_update_state(r, eff[0][1], st("committed"), 3, online)
    assert r["status"] == "running" and len(more) == 1  # a success after resuming does not pause it again
    for _, kid in eff[1:]:
        r, _ = RO.on_update_state(r, kid, st("failed", "disk_full"), 4, online)
    assert r["status"] == "running" and RO.budget(r)["failed"] == 4
    r, _ = RO.on_update_state(r, more[0][1], st("failed", "disk_full"), 6, online)
    assert r["status"] == "paused" and r["reason"]["params"]["failed"] == 5


def test_resume_after_the_wave_threshold_does_not_pause_again_on_the_next_result():
    r = planned(100, canary=0, waves=[100], error_threshold=0.05, max_in_flight=10, failure_budget=1.0)
    online = set(r["kiosks"])
    r, eff = RO.tick(r, 0, online)
    for _, kid in eff[:5]:
        r, _ = RO.on_update_state(r, kid, st("rolled_back", "crashed: x"), 1, online)
    assert r["status"] == "paused" and r["reason"]["code"] == "error_threshold"
    r, more = RO.resume(r, 2, online)
    r, _ = RO.on_update_state(r, eff[5][1], st("committed"), 3, online)
    assert r["status"] == "running"


def test_a_roll_out_stored_before_budgets_keeps_the_per_wave_rules_only():
    r = planned(1000, canary=0, waves=[100])
    del r["failure_budget"], r["accepted"]
    r, eff = RO.tick(r, 0, set(r["kiosks"]))
    assert len(eff) == 50 and RO.budget(r) is None


@pytest.mark.parametrize("bad", [0, -0.1, 1.5])
def test_a_bad_budget_is_named(bad):
    with pytest.raises(ConfigError) as exc:
        RO.new_rollout("r1", REL, created_by="a", now=0, failure_budget=bad)
    assert exc.value.field == "failure_budget"


def test_the_budget_pause_reads_in_each_console_language():
    reason = {"code": "failure_budget", "params": {"failed": 5, "targets": 1000, "budget": 0.005, "limit": 5}}
    assert rollout_words.plain(Translator("en"), reason) == (
        "5 of the roll-out's 1000 kiosks failed: its failure budget (0.5% of its kiosks, at least 1: 5 kiosks) is used up")
    assert "失败预算" in rollout_words.plain(Translator("zh-CN"), reason)
    assert rollout_words.plain(Translator("zh-HK"), reason) == \
        "本次推出的 1000 部自助機中 5 部失敗：失敗預算（其自助機的 0.5%，最少 1 部：5 部）已用完"
    b = {"limit": 5, "failed": 2, "at_risk": 4, "targets": 1000, "share": 0.005}
    assert rollout_words.budget(Translator("en"), b) == (
        "Failure budget: 2 of 5 kiosks failed; failed or updating: 4 (0.5% of the roll-out's 1000 kiosks, at least 1)")
