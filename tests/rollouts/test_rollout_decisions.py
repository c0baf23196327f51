"""The pure roll-out decisions (controller/rollouts.py) and the store's exactly-once wave start."""

from __future__ import annotations

import datetime as dt
import threading
from zoneinfo import ZoneInfo

import pytest

from contract import updates
from controller import rollouts as RO
from controller.fleet_db import FleetDb
from controller.rollout_store import RolloutStore
from foundation.errors import ConfigError
from tests.conftest import BACKENDS

REL = {"version": "2.0.0", "url": "", "manifest_sha256": "a" * 64}


def fleet(n: int, *, release: str = "1.0.0", offline: set[int] = frozenset(), site: str = "s1") -> list[dict]:
    return [{"kiosk_id": f"K{i:04d}", "state": "offline" if i in offline else "online", "site": site,
             "versions": {"release": release}} for i in range(n)]


def st(state: str, reason: str = "", version: str = "2.0.0") -> updates.UpdateState:
    return updates.UpdateState(state=state, version=version, reason=reason or ("x" if state in updates.NEED_REASON
                                                                                else ""), rollout="r1")


def planned(n: int = 100, **kw) -> dict:
    # The per-wave rules are tested with the fleet-wide budget out of the way (all kiosks); the
    # budget's own tests (test_rollout_budget.py) set it.
    kw.setdefault("failure_budget", 1.0)
    return RO.plan(RO.new_rollout("r1", REL, created_by="a", now=0, **kw), fleet(n), {})


def online(r: dict) -> set[str]:
    return set(r["kiosks"])


def test_plan_takes_online_older_targeted_kiosks_into_canary_and_waves():
    f = fleet(10) + [
        {"kiosk_id": "NEW", "state": "online", "site": "s1", "versions": {"release": "2.0.0"}},
        {"kiosk_id": "OFF", "state": "offline", "site": "s1", "versions": {"release": "1.0.0"}},
        {"kiosk_id": "DEV", "state": "online", "site": "s1", "versions": {}},
        {"kiosk_id": "S2", "state": "online", "site": "s2", "versions": {"release": "1.0.0"}}]
    r = RO.plan(RO.new_rollout("r1", REL, created_by="a", now=0, canary=2, waves=[50, 100], sites=["s1"]), f, {})
    assert sorted(r["kiosks"]) == [f"K{i:04d}" for i in range(10)]
    assert [w["total"] for w in RO.progress(r)] == [2, 4, 4]
    g = RO.plan(RO.new_rollout("r1", REL, created_by="a", now=0, groups=["g"]), f, {"g": {"K0001", "S2", "NEW"}})
    assert sorted(g["kiosks"]) == ["K0001", "S2"]


@pytest.mark.parametrize("kw,field", [({"waves": [50, 40, 100]}, "waves"), ({"waves": [10, 50]}, "waves"),
                                      ({"error_threshold": 0}, "error_threshold"), ({"canary": -1}, "canary"),
                                      ({"window": RO.Window("2:00", "05:00")}, "window.start"),
                                      ({"window": RO.Window(time_zone="Mars/Olympus")}, "window.time_zone")])
def test_bad_roll_out_options_are_named(kw, field):
    with pytest.raises(ConfigError) as e:
        RO.new_rollout("r1", REL, created_by="a", now=0, **kw)
    assert e.value.field == field


def test_a_kiosk_succeeds_only_on_commit_and_the_next_wave_starts_then():
    r = planned(20, canary=2, waves=[100], success_threshold=1.0)
    r, eff = RO.tick(r, 1, online(r))
    canary = [k for _, k in eff]
    assert len(canary) == 2 and all(kind == "update" for kind, _ in eff)
    for s in ("downloading", "installed", "switched"):
        r, eff = RO.on_update_state(r, canary[0], st(s), 2, online(r))
        assert eff == [] and r["wave"] == 0
    r, eff = RO.on_update_state(r, canary[0], st("committed"), 3, online(r))
    assert eff == [] and r["wave"] == 0  # the other canary is still open
    r, eff = RO.on_update_state(r, canary[1], st("committed"), 4, online(r))
    assert r["wave"] == 1 and len(eff) == 18 and r["status"] == "running"
    for _, kid in eff:
        r, _ = RO.on_update_state(r, kid, st("committed"), 5, online(r))
    assert r["status"] == "completed"


def test_a_late_word_of_an_update_handled_after_a_later_one_changes_nothing():
    # Two controller instances share a kiosk's messages: `switched` can be handled after `committed`.
    r = planned(4, canary=1, waves=[100], success_threshold=1.0)
    r, eff = RO.tick(r, 1, online(r))
    kid = eff[0][1]
    r, _ = RO.on_update_state(r, kid, st("installed"), 2, online(r))
    r, _ = RO.on_update_state(r, kid, st("downloading"), 2, online(r))
    assert r["kiosks"][kid]["state"] == "installed"
    r, eff = RO.on_update_state(r, kid, st("committed"), 3, online(r))
    assert r["wave"] == 1 and len(eff) == 3
    for late in ("switched", "deferred", "installed", "downloading"):
        r, more = RO.on_update_state(r, kid, st(late, "update_busy: a resident" if late == "deferred" else ""), 4,
                                     online(r))
        assert more == [] and r["kiosks"][kid]["state"] == "committed"
    # A final word after another final one still counts (committed, then rolled back by an abort).
    r, _ = RO.on_update_state(r, kid, st("rolled_back", "crashed: x"), 5, online(r))
    assert r["kiosks"][kid]["state"] == "rolled_back"
    # The wave's kiosks, each with its words out of order, all finish.
    for _, other in eff:
        for s in ("committed", "switched", "downloading"):
            r, _ = RO.on_update_state(r, other, st(s), 6, online(r))
    assert r["status"] == "completed"


def test_error_threshold_pauses_at_once_and_nothing_more_is_sent():
    r = planned(100, canary=0, waves=[100], error_threshold=0.05, max_in_flight=10)
    r, eff = RO.tick(r, 1, online(r))
    sent = [k for _, k in eff]
    assert len(sent) == 10
    r, eff = RO.on_update_state(r, sent[0], st("committed"), 2, online(r))
    assert len(eff) == 1  # a slot freed: one more
    for kid in sent[1:5]:  # 5 % of a wave of 100: four failures are not enough, each slot is refilled
        r, eff = RO.on_update_state(r, kid, st("rolled_back", "crashed: exit 1"), 3, online(r))
        assert r["status"] == "running" and len(eff) == 1
    r, eff = RO.on_update_state(r, sent[5], st("rolled_back", "crashed: exit 1"), 3, online(r))
    assert eff == [] and r["status"] == "paused"
    assert r["reason"] == {"code": "error_threshold", "params": {"wave": 0, "failed": 5, "counted": 100,
                                                                 "threshold": 0.05, "min": 1, "limit": 5}}
    assert r["kiosks"][sent[5]]["reason"] == {"code": "kiosk", "params": {"id": "crashed", "detail": "exit 1"}}
    r2, eff = RO.tick(r, 4, online(r))
    assert eff == [] and r2 == r


@pytest.mark.parametrize(("n", "share", "minimum", "limit"), [
    (100, 0.05, 1, 5), (346, 0.05, 1, 18), (346, 0.01, 1, 4), (10, 0.05, 1, 1), (10, 0.05, 3, 3),
    (1000, 0.001, 2, 2), (20, 1.0, 1, 20), (0, 0.05, 1, 1)])
def test_the_error_threshold_is_a_share_of_the_wave_with_a_minimum_count(n, share, minimum, limit):
    r = RO.new_rollout("r1", REL, created_by="a", now=0, error_threshold=share, error_min=minimum)
    assert RO.error_limit(r, n) == limit


def test_one_early_failure_does_not_pause_a_big_wave_but_the_minimum_count_is_kept():
    r = planned(200, canary=0, waves=[100], error_threshold=0.05, max_in_flight=20)
    r, eff = RO.tick(r, 1, online(r))
    r, eff = RO.on_update_state(r, eff[0][1], st("rolled_back", "no_broker"), 2, online(r))
    assert r["status"] == "running" and len(eff) == 1  # 1 of 200 is not 5 %: its slot is refilled
    small = planned(10, canary=0, waves=[100], error_threshold=0.05, error_min=2)
    small, eff = RO.tick(small, 1, online(small))
    small, _ = RO.on_update_state(small, eff[0][1], st("failed", "disk_full"), 2, online(small))
    assert small["status"] == "running"
    small, _ = RO.on_update_state(small, eff[1][1], st("failed", "disk_full"), 2, online(small))
    assert small["status"] == "paused" and (small["reason"]["params"]["min"], small["reason"]["params"]["limit"]) == (2, 2)


def test_kiosks_offline_at_their_wave_do_not_count_towards_the_wave_size():
    r = RO.plan(RO.new_rollout("r1", REL, created_by="a", now=0, canary=0, waves=[100], error_threshold=0.1,
                               failure_budget=1.0), fleet(20), {})
    r, eff = RO.tick(r, 1, set(r["kiosks"]) - {f"K{i:04d}" for i in range(10)})
    assert len(eff) == 10 and RO.wave_counts(r, 0)["skipped"] == 10
    r, _ = RO.on_update_state(r, eff[0][1], st("failed", "disk_full"), 2, online(r))
    assert r["status"] == "paused" and (r["reason"]["params"]["failed"], r["reason"]["params"]["counted"]) == (1, 10)


@pytest.mark.parametrize("bad", [0, -1])
def test_error_min_must_be_at_least_one(bad):
    with pytest.raises(ConfigError) as exc:
        RO.new_rollout("r1", REL, created_by="a", now=0, error_min=bad)
    assert exc.value.field == "error_min"


def test_silent_kiosks_time_out_and_retry_sends_only_the_failed():
    r = planned(4, canary=0, waves=[100], timeout_s=60, error_threshold=1.0, success_threshold=0.5)
    r, eff = RO.tick(r, 0, online(r))
    kids = [k for _, k in eff]
    r, _ = RO.on_update_state(r, kids[0], st("committed"), 10, online(r))
    r, _ = RO.on_update_state(r, kids[1], st("rolled_back", "no_broker"), 10, online(r))
    r, _ = RO.on_update_state(r, kids[2], st("failed", "manifest_mismatch"), 10, online(r))
    r, _ = RO.tick(r, 59, online(r))
    assert r["kiosks"][kids[3]]["state"] == "sent"
    r, _ = RO.tick(r, 61, online(r))
    assert r["kiosks"][kids[3]]["state"] == "timed_out"
    assert r["status"] == "paused" and r["reason"] == {"code": "success_threshold", "params": {
        "wave": 0, "succeeded": 1, "counted": 4, "threshold": 0.5}}
    assert r["kiosks"][kids[3]]["reason"] == {"code": "timed_out", "params": {"timeout": 60}}
    r, eff = RO.retry_failed(r, 70, online(r))
    assert sorted(k for _, k in eff) == sorted([kids[2], kids[3]])  # not the rolled-back one
    assert r["kiosks"][kids[1]]["state"] == "rolled_back"


def test_approval_before_each_wave_and_abort_rolls_back_kiosks_on_trial():
    r = planned(10, canary=1, waves=[100], approval=True)
    r, eff = RO.tick(r, 0, online(r))
    r, eff = RO.on_update_state(r, eff[0][1], st("committed"), 1, online(r))
    assert eff == [] and r["status"] == "awaiting_approval"
    with pytest.raises(ConfigError):
        RO.resume(r, 2, online(r))
    r, eff = RO.approve(r, 2, online(r))
    assert r["wave"] == 1 and len(eff) == 9
    r, _ = RO.on_update_state(r, eff[0][1], st("switched"), 3, online(r))
    r, _ = RO.on_update_state(r, eff[1][1], st("committed"), 3, online(r))
    r, out = RO.abort(r, "bad reports from the field", 4)
    assert r["status"] == "aborted" and out == [("rollback", eff[0][1])]
    with pytest.raises(ConfigError, match="aborted"):
        RO.retry_failed(r, 5, online(r))


def test_maintenance_window_in_local_time_and_offline_kiosks_skipped():
    tz = ZoneInfo("Asia/Shanghai")
    at = lambda h, m=0: dt.datetime(2026, 12, 4, h, m, tzinfo=tz).timestamp()  # noqa: E731
    w = RO.Window("02:00", "05:00")
    assert [w.contains(at(h, m)) for h, m in [(1, 59), (2, 0), (4, 59), (5, 0)]] == [False, True, True, False]
    assert RO.Window("22:00", "04:00").contains(at(23)) and not RO.Window("22:00", "04:00").contains(at(12))
    r = planned(5, canary=0, waves=[100], window=w)
    r, eff = RO.tick(r, at(12), online(r))
    assert eff == []
    r, eff = RO.tick(r, at(3), online(r) - {"K0000"})
    assert len(eff) == 4 and r["kiosks"]["K0000"]["state"] == "skipped"


@pytest.mark.parametrize("backend", BACKENDS)
def test_a_wave_starts_exactly_once_under_100_concurrent_advances(tmp_path, fleet_database):
    store = RolloutStore(FleetDb(tmp_path, fleet_database))
    r = planned(200, canary=10, waves=[100], success_threshold=0.9)
    r, eff = RO.tick(r, 0, online(r))
    for _, kid in eff:
        r, _ = RO.on_update_state(r, kid, st("committed"), 1, online(r))
    assert r["wave"] == 1
    # Go back to the moment before the wave: every canary committed, wave 1 not yet opened.
    r["wave"] = 0
    for k in r["kiosks"].values():
        if k["wave"] == 1:
            k.update(state="pending", since=0.0)
    store.create(r)
    # Each thread has its own connection: on PostgreSQL 50 threads (the test cluster allows 100
    # connections in all) make two advances each, all released at once.
    threads_n = 50 if fleet_database else 100
    barrier = threading.Barrier(threads_n)
    won: list[list] = []
    errors: list[BaseException] = []
    calls: list[int] = []

    def advance():
        try:
            barrier.wait(30)
            for _ in range(100 // threads_n):
                calls.append(1)
                _, effects = store.mutate("r1", lambda cur: RO.tick(cur, 2, online(cur)))
                if effects:
                    won.append(effects)
        except BaseException as exc:  # noqa: BLE001 - reported below
            errors.append(exc)
    threads = [threading.Thread(target=advance) for _ in range(threads_n)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert not errors and len(calls) == 100
    assert len(won) == 1 and len(won[0]) == 50  # max_in_flight of wave 1, sent by one caller only
    final = store.get("r1")
    assert final["wave"] == 1 and sum(k["state"] == "sent" for k in final["kiosks"].values()) == 50
    store.close()
