"""``cmd/update`` end to end: the real controller signs and sends it, the real kiosk agent runs the
real updater (download over HTTP, pip --no-index venv, atomic switch, health window with the
probe app) in the background, and reports on ``update/state``, read with the controller's parser."""

from __future__ import annotations

import hashlib
import threading
import time

import pytest

from contract import release as R
from contract import topics, updates
from kiosk_ui.agent.updates import LocalSteps
from kiosk_ui.updater import locks
from kiosk_ui.updater.fetch import Fetcher
from kiosk_ui.updater.health import HealthPolicy
from tests.fleet.conftest import wait_until
from tests.support.bundle_server import BundleServer


@pytest.fixture
def bundles(releases):
    with BundleServer(releases.base) as srv:
        yield srv


def _steps(kiosk, app):
    return LocalSteps(kiosk.installer, kiosk.sw,
                      fetcher=lambda url: Fetcher(url, kiosk.lay.objects, sleep=time.sleep),
                      restart=app.start, observe=app.observe, wait=time.sleep, interval=0.1)


def _update_args(releases, bundles, version: str, rollout: str = "r-1") -> dict:
    raw = (releases.base / f"bundle-{version}" / R.MANIFEST_FILE).read_bytes()
    return updates.update_args(version=version, url=f"{bundles.url}/bundle-{version}",
                               manifest_sha256=hashlib.sha256(raw).hexdigest(), rollout=rollout)


def _states(r, kiosk_id: str) -> list[updates.UpdateState]:
    out = []
    for topic, payload in list(r.messages):
        if topic == topics.topic(kiosk_id, "update/state"):
            out.append(topics.parse(topic, payload).model)
    return out


def _wait_final(r, kiosk_id: str, version: str, timeout: float = 120) -> updates.UpdateState:
    return wait_until(lambda: next((s for s in _states(r, kiosk_id) if s.version == version and s.final), None),
                      timeout, f"final update state of {version}")


@pytest.fixture
def fleet(make_controller, make_kiosk, raw, kiosk, app):
    """``fleet(kiosk_id)`` -> (controller, watcher of update/state, kiosk runtime with the updater)."""
    def make(kiosk_id: str):
        ctl = make_controller()
        r = raw("watcher")
        r.subscribe("kiosk/v1/+/update/state")
        k = make_kiosk(kiosk_id, ctl.public_key(), updater=_steps(kiosk, app))
        wait_until(lambda: (ctl.kiosk(kiosk_id) or {}).get("state") == "online", 10, "kiosk online")
        return ctl, r, k
    return make


def test_update_command_installs_switches_and_commits(fleet, kiosk, releases, bundles):
    ctl, r, k = fleet("K-UPD")

    cid = ctl.send_command("K-UPD", "update", _update_args(releases, bundles, "2.0.0"), "alice")
    rec = ctl.wait_command(cid, 10)
    assert rec["status"] == "succeeded" and rec["result"] == {"accepted": "2.0.0"}  # answered at once
    final = _wait_final(r, "K-UPD", "2.0.0")
    assert (final.state, final.running, final.rollout, final.command) == ("committed", "2.0.0", "r-1", cid)
    seen = [s.state for s in _states(r, "K-UPD")]
    assert seen == ["downloading", "installed", "switched", "committed"]
    assert kiosk.sw.current() == kiosk.sw.committed() == "2.0.0"
    assert k.agent.journal.get("update_state", {})["state"] == "committed"

    again = ctl.wait_command(ctl.send_command("K-UPD", "update", _update_args(releases, bundles, "2.0.0"),
                                              "alice"), 10)
    assert again["status"] == "succeeded"  # already running it: committed again, nothing installed


def test_crashing_release_rolls_back_and_reports_why(fleet, kiosk, app, releases, bundles):
    ctl, r, _ = fleet("K-BAD")
    ctl.send_command("K-BAD", "update", _update_args(releases, bundles, "3.0.0"), "alice")
    final = _wait_final(r, "K-BAD", "3.0.0")
    assert final.state == "rolled_back" and final.reason.startswith("crashed: exit status 1")
    assert final.running == "1.0.0" and kiosk.sw.current() == "1.0.0"
    assert app.running_version() == "1.0.0"
    events = wait_until(lambda: ctl.events(kiosk_id="K-BAD", type="update_rolled_back")["items"], 10,
                        "roll-back event stored")
    assert "crashed" in str(events[0])


def test_wrong_manifest_hash_fails_before_anything_is_installed(fleet, kiosk, releases, bundles):
    ctl, r, _ = fleet("K-PIN")
    args = {**_update_args(releases, bundles, "2.0.0"), "manifest_sha256": "0" * 64}
    ctl.send_command("K-PIN", "update", args, "alice")
    final = _wait_final(r, "K-PIN", "2.0.0", 30)
    assert final.state == "failed" and final.reason.startswith("manifest_mismatch")
    assert not kiosk.lay.installed("2.0.0") and kiosk.sw.current() == "1.0.0"


def test_a_held_session_lock_defers_the_switch_until_the_session_ends(fleet, kiosk, releases, bundles):
    ctl, r, k = fleet("K-LCK")
    k.agent.updates.retry_s = 0.2  # the kiosk tries the switch again (default every 60 s)
    held, release = threading.Event(), threading.Event()

    def resident():
        with locks.hold(kiosk.sw.lock_dir, "session", 900):
            held.set()
            release.wait(60)
    t = threading.Thread(target=resident)
    t.start()
    held.wait(5)
    try:
        first = ctl.send_command("K-LCK", "update", _update_args(releases, bundles, "2.0.0"), "alice")
        second = ctl.wait_command(ctl.send_command("K-LCK", "update", _update_args(releases, bundles, "2.0.0"),
                                                   "alice"), 10)
        assert ctl.wait_command(first, 10)["status"] == "succeeded"
        # The first is still downloading and installing: one update at a time.
        assert second["status"] == "failed" and "update_busy" in second["error"]
        final = wait_until(lambda: next((s for s in _states(r, "K-LCK") if s.state == "deferred"), None), 120,
                           "deferred")
        assert final.reason.startswith("deferred (busy): session held")
        assert kiosk.sw.current() == "1.0.0"
    finally:
        release.set()
        t.join(5)
    done = _wait_final(r, "K-LCK", "2.0.0")  # the session ended: the next attempt switches
    assert done.state == "committed" and kiosk.sw.current() == "2.0.0"


def test_update_rollback_command_rolls_a_trial_back_at_once(fleet, kiosk, releases, bundles):
    """What an aborted roll-out sends to a kiosk on trial."""
    kiosk.sw.policy = HealthPolicy(window_s=600, signal_deadline_s=60)  # the trial would last 10 minutes
    ctl, r, _ = fleet("K-ABT")
    ctl.send_command("K-ABT", "update", _update_args(releases, bundles, "2.0.0"), "alice")
    wait_until(lambda: any(s.state == "switched" for s in _states(r, "K-ABT")), 120, "on trial")
    res = ctl.wait_command(ctl.send_command("K-ABT", "update_rollback", {"version": "2.0.0"}, "rollout:r-x"), 10)
    assert res["status"] == "succeeded" and res["result"] == {"rolled_back": "2.0.0"}
    final = _wait_final(r, "K-ABT", "2.0.0", 30)
    assert final.state == "rolled_back" and final.reason.startswith("aborted")
    assert kiosk.sw.current() == "1.0.0" and "2.0.0" in kiosk.sw.state().bad
    again = ctl.wait_command(ctl.send_command("K-ABT", "update_rollback", {"version": "2.0.0"}, "alice"), 10)
    assert again["status"] == "failed" and "no_trial" in again["error"]
