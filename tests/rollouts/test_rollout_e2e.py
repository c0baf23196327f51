"""Roll-outs end to end: the real controller with its roll-out job, releases published into its
registry and served by its console server (REST API, release files), real kiosk agents running the real updater with the probe app on
the real broker. Canary -> wave -> committed; a crashing release rolls back and pauses."""

from __future__ import annotations

import dataclasses
import json
import time
import urllib.error
import urllib.request

import pytest

from controller import release_registry, rollout_job
from controller.web import rollout_api, rollout_live, rollout_pages
from controller.web.accounts import Accounts
from controller.web.serve import start_console
from kiosk_ui.update_hooks import HealthSignals
from kiosk_ui.updater.health import HealthPolicy
from tests.fleet.conftest import wait_until
from tests.rollouts.test_kiosk_update_link import _steps
from tests.updates.conftest import Kiosk
from tests.updates.probe import Service


@pytest.fixture
def site(make_controller, make_kiosk, broker, releases, tmp_path):
    """A controller with its roll-out job and two kiosks on release 1.0.0 (each its own updater root
    and app), both online."""
    ctl = make_controller()
    job = rollout_job.for_controller(ctl, base_url="", interval=0.2)
    console, url = start_console(ctl, dataclasses.replace(ctl.config, http="127.0.0.1:0"),
                                 extra_routes=(*rollout_api.routes(job), *rollout_pages.routes(job)))
    job.base_url = f"{url.rstrip('/')}/releases"
    watch = rollout_live.attach(console.app.state.console, job)
    token = Accounts(ctl.config.data_dir).create_token("ci", "operator")
    store = job.store
    job.start()
    kiosks, apps = {}, []
    for kid in ("K-R1", "K-R2"):
        k = Kiosk(tmp_path / f"root-{kid}", releases, HealthPolicy(window_s=1.5, signal_deadline_s=8.0))
        k.installer.accept_key_list(releases.key_list)
        k.install("1.0.0")
        k.sw.activate_first("1.0.0")
        app = Service(k, broker.port, tmp_path / f"health-{kid}")
        app.start()
        apps.append(app)
        make_kiosk(kid, ctl.public_key(), updater=_steps(k, app),
                   health=HealthSignals(tmp_path / f"signals-{kid}", "1.0.0"))
        kiosks[kid] = k
    for kid in kiosks:
        wait_until(lambda kid=kid: (ctl.kiosk(kid) or {}).get("versions", {}).get("release") == "1.0.0", 10,
                   f"{kid} online on 1.0.0")
    yield ctl, store, job, kiosks, (url, token)
    job.stop()
    watch.stop()
    console.stop()
    for app in apps:
        app.stop()


def _publish(ctl, store, releases, version):
    return release_registry.publish(store, ctl.config.data_dir, releases.base / f"bundle-{version}", user="rel",
                                    now=time.time())


def _api(http, path: str, body: dict | None = None, headers: dict | None = None):
    url, token = http
    req = urllib.request.Request(url.rstrip("/") + path, data=json.dumps(body).encode() if body else None,
                                 headers={"authorization": f"Bearer {token}", "content-type": "application/json",
                                          **(headers or {})}, method="POST" if body else "GET")
    with urllib.request.urlopen(req, timeout=10) as resp:
        raw = resp.read()
        return resp.status, (raw if headers else json.loads(raw))


def test_canary_then_wave_then_completed(site, releases):
    ctl, store, job, kiosks, http = site
    _publish(ctl, store, releases, "2.0.0")
    status, r = _api(http, "/api/v1/rollouts", {"version": "2.0.0", "id": "r-good", "canary": 1, "waves": [100],
                                                "success_threshold": 1.0, "error_threshold": 0.5, "timeout_s": 120,
                                                "failure_budget": 0.5})
    assert status == 201
    assert r["failure_budget"] == 0.5 and r["budget"] == {"limit": 1, "failed": 0, "at_risk": 1, "targets": 2,
                                                          "share": 0.5}
    with pytest.raises(urllib.error.HTTPError) as bad:
        _api(http, "/api/v1/rollouts", {"version": "2.0.0", "id": "r-bad-budget", "failure_budget": 2})
    assert bad.value.code == 422 and "failure_budget" in bad.value.read().decode()
    _, spec = _api(http, "/openapi.json")
    assert "/api/v1/rollouts/{rollout_id}/{action}" in spec["paths"]
    status, part = _api(http, "/releases/kiosk/2.0.0/manifest.json", headers={"range": "bytes=10-"})
    assert status == 206 and part == (releases.base / "bundle-2.0.0" / "manifest.json").read_bytes()[10:]
    assert r["wave_count"] == 2 and sorted(r["kiosks"]) == ["K-R1", "K-R2"]
    canary = next(kid for kid, k in r["kiosks"].items() if k["wave"] == 0)
    other = next(kid for kid in kiosks if kid != canary)
    assert r["kiosks"][canary]["state"] == "sent" and r["kiosks"][other]["state"] == "pending"
    done = wait_until(lambda: (store.get("r-good") or {})["status"] == "completed" and store.get("r-good"), 180,
                      "roll-out completed")
    assert {kid: k["state"] for kid, k in done["kiosks"].items()} == {"K-R1": "committed", "K-R2": "committed"}
    assert all(k.sw.committed() == "2.0.0" for k in kiosks.values())
    actions = [a["action"] for a in ctl.audit_log()["items"] if a["target"] == "r-good"]
    assert "rollout_create" in actions and "rollout_wave" in actions
    _, shown = _api(http, "/api/v1/rollouts/r-good")
    assert [(w["total"], w["succeeded"]) for w in shown["progress"]] == [(1, 1), (1, 1)]
    _, prom = _api(http, "/metrics", headers={"accept": "text/plain"})
    assert b'kiosk_rollout_kiosks{status="completed",state="committed"} 2' in prom
    assert b"kiosk_rollout_waves_started_total 2" in prom and b'kiosk_rollouts{status="completed"} 1' in prom
    assert b"kiosk_fleet_kiosks{" in prom  # the console's own series, in the same scrape
    served = int(next(x for x in prom.splitlines() if x.startswith(b"kiosk_release_download_bytes_total ")).split()[1])
    assert served >= 2 * len((releases.base / "bundle-2.0.0" / "manifest.json").read_bytes())  # both kiosks
    assert b"kiosk_rollout_updates_sent_total 2" in prom
    _, page = _api(http, "/rollouts/r-good", headers={"accept": "text/html"})
    html = page.decode()
    assert "K-R1" in html and "K-R2" in html and "已确认" in html and "rollouts.kiosk_state" not in html


def test_failing_release_rolls_back_the_canary_and_pauses(site, releases):
    ctl, store, job, kiosks, http = site
    _publish(ctl, store, releases, "3.0.0")
    r = job.create(version="3.0.0", user="alice", rollout_id="r-bad", canary=1, waves=[100], timeout_s=120)
    canary = next(kid for kid, k in r["kiosks"].items() if k["wave"] == 0)
    other = next(kid for kid in kiosks if kid != canary)
    paused = wait_until(lambda: (store.get("r-bad") or {})["status"] == "paused" and store.get("r-bad"), 120,
                        "roll-out paused")
    assert paused["reason"]["code"] == "error_threshold" and paused["reason"]["params"]["failed"] == 1
    assert paused["kiosks"][canary]["state"] == "rolled_back"
    assert paused["kiosks"][canary]["reason"]["params"]["id"] == "crashed"  # the real updater's roll-back reason
    # What the real kiosk reported and the pause, in the operator's language on the roll-out page.
    _, zh = _api(http, "/rollouts/r-bad", headers={"accept": "text/html"})
    assert "第 0 批：1 台中 1 台失败" in zh.decode() and "新版本崩溃" in zh.decode()
    _, en = _api(http, "/rollouts/r-bad", headers={"accept": "text/html", "accept-language": "en"})
    assert "wave 0: 1 of 1 kiosks failed" in en.decode() and "the new release crashed" in en.decode()
    assert paused["kiosks"][other]["state"] == "pending"  # never told to update
    assert kiosks[canary].sw.current() == "1.0.0" and kiosks[other].sw.current() == "1.0.0"
    assert not kiosks[other].lay.installed("3.0.0")
