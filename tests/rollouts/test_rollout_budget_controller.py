"""The failure budget through the real controller (its fleet database on SQLite and on PostgreSQL): a roll-out made with ``kioskctl rollout create
--failure-budget``, its commands signed and sent by the controller's roll-out job over the real
broker to simulated kiosks that parse and verify them with the contract (the benchmark's fleet,
benchmarks/rollout_bench.py) and answer with the contract's ``update/state``; a quarter of them
fail their health window. The roll-out pauses on its budget and no more kiosks than the budget
ever ran the failing release."""

from __future__ import annotations

import json

import pytest

from benchmarks.rollout_bench import SimFleet
from controller import ctl, rollout_job
from tests.conftest import BACKENDS
from tests.fleet.conftest import wait_until

pytestmark = pytest.mark.parametrize("backend", BACKENDS)


def kioskctl(capsys, data_dir, database, *argv) -> tuple[int, object]:
    code = ctl.main(["--data-dir", str(data_dir), *(["--database", database] if database else []), "--user", "alice",
                     *argv])
    out, err = capsys.readouterr()
    return code, (json.loads(out) if "--json" in argv and code == 0 else out + err)


def test_the_controller_pauses_on_the_budget_before_more_kiosks_run_a_failing_release(
        make_controller, broker, releases, capsys, fleet_database):
    c = make_controller(database=fleet_database)
    job = rollout_job.for_controller(c, base_url="https://ctl.example/releases", interval=0.2)
    job.start()
    ids = [f"K{i:04d}" for i in range(40)]
    sims = SimFleet(broker.port, ids, c.public_key(), conns=2, window=0.3)
    try:
        sims.failing = {kid for i, kid in enumerate(ids) if i % 4 == 0}
        wait_until(lambda: all((c.kiosk(k) or {}).get("state") == "online" for k in ids), 20, "40 kiosks online")
        d = c.config.data_dir
        code, _ = kioskctl(capsys, d, fleet_database, "releases", "publish", str(releases.base / "bundle-2.0.0"))
        assert code == 0
        # 5 % of 40 kiosks: 2. The per-wave threshold (100 %) and max-in-flight (10) would let far more through.
        code, r = kioskctl(capsys, d, fleet_database, "rollout", "create", "2.0.0", "--id", "r-budget", "--canary", "0", "--base-url", "https://ctl.example/releases",
                           "--waves", "100", "--error", "1.0", "--success", "0.5", "--max-in-flight", "10",
                           "--failure-budget", "0.05", "--json")
        assert code == 0, r
        assert r["failure_budget"] == 0.05 and r["budget"] == {"limit": 2, "failed": 0, "at_risk": 2, "targets": 40,
                                                                "share": 0.05}
        assert sum(k["state"] == "sent" for k in r["kiosks"].values()) == 2  # paced by the budget, not by 10
        paused = wait_until(lambda: (job.store.get("r-budget") or {}).get("status") == "paused"
                            and job.store.get("r-budget"), 60, "roll-out paused")
        assert paused["reason"] == {"code": "failure_budget",
                                    "params": {"failed": 2, "targets": 40, "budget": 0.05, "limit": 2}}
        ran_failing = sims.failing & set(sims.got_update)
        assert len(ran_failing) == 2
        assert all(paused["kiosks"][k]["state"] == "rolled_back" for k in ran_failing)
        sent = sum(k["state"] not in ("pending", "skipped") for k in paused["kiosks"].values())
        assert sent == len(sims.got_update)  # every kiosk the roll-out counts as sent got its command, no other
        code, out = kioskctl(capsys, d, fleet_database, "rollout", "show", "r-budget")
        assert code == 0 and "failure budget (5.0% of its kiosks, at least 1: 2 kiosks) is used up" in out
        assert "Failure budget: 2 of 2 kiosks failed" in out
    finally:
        sims.close()
        job.stop()
