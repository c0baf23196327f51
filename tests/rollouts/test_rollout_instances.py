"""Roll-outs with two controller instances on one PostgreSQL database (issue 16): both consoles'
REST APIs show the same roll-outs, a roll-out made through the instance without the
singleton-jobs lease is sent by the holder's job only, and the kiosks' states, which the shared
subscription hands to either instance, all count. Real controllers in this process, the real
broker, simulated kiosks that parse and verify every command with the contract
(benchmarks/rollout_bench.py) and answer with the contract's ``update/state``."""

from __future__ import annotations

import dataclasses
import json
import time
import urllib.request

from benchmarks.rollout_bench import SimFleet
from contract import signing
from controller import release_registry
from controller.fleet_db import FleetDb
from controller.web import rollout_api, rollout_live
from controller.web.accounts import Accounts
from controller.web.serve import start_console
from tests.rollouts.conftest import start_instance
from tests.support.waiting import wait_until


def _get(url: str, token: str, path: str) -> dict:
    req = urllib.request.Request(url.rstrip("/") + path, headers={"authorization": f"Bearer {token}"})
    with urllib.request.urlopen(req, timeout=10) as resp:
        return json.loads(resp.read())


def test_two_instances_show_the_same_rollouts_and_only_the_lease_holder_sends(
        broker, postgres_url, releases, tmp_path):
    key_dir = tmp_path / "fleet-key"
    public = signing.public_key_text(signing.load_or_create_key(key_dir))
    ctls, jobs, consoles, watches = {}, {}, [], []
    sims = None
    try:
        for name in ("a", "b"):
            c, job = start_instance(broker, postgres_url, tmp_path, name, key_dir,
                                    base_url="https://ctl.example/releases")
            ctls[name], jobs[name] = c, job
            job.start()
            consoles.append(start_console(c, dataclasses.replace(c.config, http="127.0.0.1:0"),
                                          extra_routes=tuple(rollout_api.routes(job))))
            watches.append(rollout_live.attach(consoles[-1][0].app.state.console, job))
        wait_until(lambda: ctls["a"].lease.holder != ctls["b"].lease.holder, 15, "one instance holds the lease")
        holder = "a" if ctls["a"].lease.holder else "b"
        other = "b" if holder == "a" else "a"
        token = Accounts(tmp_path / "ctl-a", fleet_db=FleetDb.from_config(ctls["a"].config)).create_token(
            "ci", "viewer")
        ids = [f"K{i:04d}" for i in range(12)]
        sims = SimFleet(broker.port, ids, public, conns=2, window=0.2)
        wait_until(lambda: all((ctls[other].kiosk(k) or {}).get("state") == "online" for k in ids), 20, "online")
        release_registry.publish(jobs[other].store, tmp_path / f"ctl-{other}", releases.base / "bundle-2.0.0",
                                 user="rel", now=time.time())
        # Made through the instance without the lease (its console, say): decided there, nothing sent there.
        jobs[other].create(version="2.0.0", user="alice", rollout_id="r-two", canary=2, waves=[100],
                           max_in_flight=4, failure_budget=1.0, timeout_s=120)
        done = wait_until(lambda: (jobs[other].store.get("r-two") or {}).get("status") == "completed"
                          and jobs[other].store.get("r-two"), 60, "roll-out completed")
        assert {k["state"] for k in done["kiosks"].values()} == {"committed"} and len(done["kiosks"]) == 12
        assert jobs[holder].metrics["updates_sent"] == 12 and jobs[other].metrics["updates_sent"] == 0
        assert sorted(sims.got_update) == ids  # each kiosk got its command once (the sims keep the first)
        # The shared subscription hands each kiosk's state to either instance; both took part.
        assert jobs[holder].metrics["states_received"] > 0 and jobs[other].metrics["states_received"] > 0
        shown = [_get(url, token, "/api/v1/rollouts") for _, url in consoles]
        assert shown[0] == shown[1] and [x["id"] for x in shown[0]["items"]] == ["r-two"]
        assert shown[0]["items"][0]["status"] == "completed"
        assert [x["version"] for x in _get(consoles[1][1], token, "/api/v1/releases")["items"]] == ["2.0.0"]
        for _, url in consoles:  # the store's series, read from PostgreSQL, on every instance's /metrics
            req = urllib.request.Request(url.rstrip("/") + "/metrics", headers={"authorization": f"Bearer {token}",
                                                                                  "accept": "text/plain"})
            with urllib.request.urlopen(req, timeout=10) as resp:
                prom = resp.read().decode()
            assert 'kiosk_rollouts{status="completed"} 1' in prom and "kiosk_rollout_waves_started_total 2" in prom
            assert 'kiosk_rollout_kiosks{status="completed",state="committed"} 12' in prom
    finally:
        if sims is not None:
            sims.close()
        for job in jobs.values():
            job.stop()
        for watch in watches:
            watch.stop()
        for server, _ in consoles:
            server.stop()
        for c in ctls.values():
            c.stop()
