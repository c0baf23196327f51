"""The running kiosk feeds its updater: health signals (ready, broker, devices) for the release
it runs, and the update lock held by sessions, prints and card reads (kiosk_ui/update_hooks.py)."""

from __future__ import annotations

import contextlib
import json
import sys
import time

import pytest

from foundation.errors import KioskError
from kiosk_ui import update_hooks
from kiosk_ui.devices import Devices
from kiosk_ui.updater import health, locks
from tests.fleet.conftest import wait_until
from tests.kiosk.conftest import kiosk_config
from tests.support.processes import Proc


def test_running_release_comes_from_the_env_or_the_release_folder(tmp_path):
    assert update_hooks.running_release({"KIOSK_RELEASE": "1.2.3"}, "/x") == "1.2.3"
    assert update_hooks.running_release({}, "/opt/kiosk/releases/1.4.0/venv") == "1.4.0"
    assert update_hooks.running_release({}, str(tmp_path / ".venv")) == ""
    h, lk = update_hooks.from_environment({})
    assert h.version == "" and lk.lock_dir is None  # a checkout or the demo: nothing to report or lock


def test_health_signals_are_written_once_for_this_release(tmp_path):
    h = update_hooks.HealthSignals(tmp_path / "health", "1.4.0", clock=lambda: 100.0)
    h.report("ready")
    h.report("broker")
    (tmp_path / "health" / "ready").unlink()
    h.report("ready")  # once per process: the file's removal by someone else is not re-done
    assert health.read_signals(tmp_path / "health", "1.4.0", 99.0) == {"broker"}
    assert health.read_signals(tmp_path / "health", "1.3.0", 0.0) == frozenset()
    update_hooks.HealthSignals(tmp_path / "h2", "", clock=time.time).report("ready")
    assert not (tmp_path / "h2").exists()


def test_session_and_activities_hold_the_update_lock(tmp_path):
    lk = update_hooks.ActivityLocks(tmp_path / "locks", clock=lambda: 10.0)
    lk.session(True)
    lk.session(True)
    with locks.SwitchGuard(tmp_path / "locks", 20.0) as g:
        assert [(b.activity, b.age_s, b.limit_s) for b in g.busy] == [("session", 10.0, 900.0)]
    lk.session(False)
    with lk.hold("print"), locks.SwitchGuard(tmp_path / "locks", 20.0) as g:
        assert [b.activity for b in g.busy] == ["print"]
    with locks.SwitchGuard(tmp_path / "locks", 20.0) as g:
        assert g.busy == []


def test_a_lock_folder_the_kiosk_cannot_use_never_stops_a_resident(tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("")
    lk = update_hooks.ActivityLocks(blocker / "locks")
    lk.session(True)
    with lk.hold("card_read"):
        pass
    lk.session(False)


def test_prints_and_card_reads_take_their_lock(tmp_path):
    taken: list[str] = []

    class Recorder:
        @contextlib.contextmanager
        def hold(self, activity):
            taken.append(activity)
            yield

    d = Devices({}, data_dir=tmp_path, locks=Recorder())
    assert d.print_receipt([]).reason == "no_printer"
    with pytest.raises(KioskError):
        d.read_identity("id_card", 0.1)  # no reader here; only the lock matters
    assert taken == ["print", "card_read"]


def test_kiosk_app_reports_health_and_holds_the_session_lock(broker, tmp_path, procs, artifacts):
    """The real Kivy app under Xvfb, run as a release: ready (first frame), broker (agent), devices."""
    steps = [["screen", "attract"], ["press", "start"], ["press", "service:queue_ticket"], ["screen", "step"],
             ["sync", "checked"]]
    script = tmp_path / "script.json"
    script.write_text(json.dumps(steps))
    env = {"KIOSK_RELEASE": "9.9.9", "KIOSK_HEALTH_DIR": str(tmp_path / "health"),
           "KIOSK_UPDATE_LOCKS": str(tmp_path / "locks")}
    started = time.time()
    p = Proc([sys.executable, "-m", "tests.kiosk.harness", "--script", str(script), "--data-dir",
              str(tmp_path / "kiosk"), "--artifacts", str(artifacts), "--tag", "update-hooks",
              "--config", str(kiosk_config(tmp_path, broker.url, kiosk_id="k-hooks"))], env=env)
    procs.append(p)
    p.wait_for(lambda s: s.startswith(("WAIT", "FAIL")), timeout=90)
    wait_until(lambda: health.read_signals(tmp_path / "health", "9.9.9", started) == set(health.SIGNALS), 30,
               "ready, broker and devices signals")
    with locks.SwitchGuard(tmp_path / "locks", time.time()) as g:
        assert [b.activity for b in g.busy] == ["session"]
    p.proc.stdin.write("checked\n")
    p.proc.stdin.flush()
    p.wait_for(lambda s: s.startswith(("DONE", "FAIL")), timeout=60)
