"""The kiosk installs a release beside the running one, switches atomically, proves health or
rolls back by itself. Real venvs, real pip --no-index, the real app process, the real broker."""

from __future__ import annotations

import hashlib
import json
import threading
import time
from pathlib import Path

import pytest

from contract import release as R
from kiosk_ui.updater import locks
from kiosk_ui.updater.state import UpdateError
from kiosk_ui.updater.watch import watch
from provisioning import release_build as B
from tests.updates.probe import Service


def _tree_digest(path: Path) -> str:
    h = hashlib.sha256()
    for p in sorted(path.rglob("*")):
        if p.is_file() and "__pycache__" not in p.parts:
            h.update(str(p.relative_to(path)).encode() + p.read_bytes())
    return h.hexdigest()


@pytest.fixture
def service(kiosk, broker, tmp_path):
    s = Service(kiosk, broker.port, tmp_path / "health")
    s.start()
    assert s.running_version() == "1.0.0"
    yield s
    s.stop()


def _switch_and_watch(kiosk, service, version: str):
    kiosk.install(version)
    out = kiosk.sw.switch(version)
    assert out.status == "switched"
    t0 = time.monotonic()
    service.start()  # systemctl restart kiosk
    result = watch(kiosk.sw, service.observe, restart=service.start, wait=time.sleep, interval=0.1)
    return result, time.monotonic() - t0


def test_healthy_release_commits_and_the_old_one_was_never_touched(kiosk, service):
    old = kiosk.lay.release("1.0.0")
    before = _tree_digest(old)
    result, _ = _switch_and_watch(kiosk, service, "2.0.0")
    assert (result.status, result.version) == ("committed", "2.0.0")
    assert kiosk.sw.current() == kiosk.sw.committed() == "2.0.0"
    assert _tree_digest(old) == before
    assert (kiosk.lay.release("2.0.0") / "venv" / "pyvenv.cfg").is_file()
    assert service.running_version() == "2.0.0"
    assert kiosk.sw.state().last_result["status"] == "committed"


def test_release_crashing_on_import_rolls_back_and_is_marked_bad(kiosk, service):
    result, took = _switch_and_watch(kiosk, service, "3.0.0")
    assert result.status == "rolled_back" and result.reason.startswith("crashed: exit status 1")
    assert took < 90
    assert kiosk.sw.current() == kiosk.sw.committed() == "1.0.0"
    assert service.running_version() == "1.0.0"
    st = kiosk.sw.state()
    assert st.bad == ("3.0.0",) and st.last_result["reason"] == result.reason
    with pytest.raises(UpdateError, match="marked_bad"):
        kiosk.sw.switch("3.0.0")
    bundle = kiosk.releases.base / "bundle-3.0.0"
    with pytest.raises(R.ReleaseRejected, match="failed on this device"):
        kiosk.installer.check((bundle / R.MANIFEST_FILE).read_bytes(), "1.0.0")


def test_release_that_never_reaches_the_broker_rolls_back(kiosk, service):
    result, took = _switch_and_watch(kiosk, service, "4.0.0")
    assert result.status == "rolled_back" and result.reason.startswith("no_broker")
    assert took < 90
    assert service.running_version() == "1.0.0"


def test_ordinary_boots_never_roll_back_but_a_boot_loop_on_trial_does(kiosk):
    for _ in range(10):  # power cuts with no trial pending
        assert kiosk.sw.boot().status == "nothing"
    assert kiosk.sw.current() == "1.0.0"
    kiosk.install("2.0.0")
    kiosk.sw.switch("2.0.0")
    for n in range(1, kiosk.sw.policy.max_trial_boots + 1):
        out = kiosk.sw.boot()
        assert (out.status, kiosk.sw.state().trial.boots) == ("trial", n)
    out = kiosk.sw.boot()
    assert out.status == "rolled_back" and out.reason.startswith("boot_loop")
    assert kiosk.sw.current() == "1.0.0" and kiosk.sw.state().bad == ("2.0.0",)


def test_update_lock_defers_and_reports_a_stale_lock(kiosk, tmp_path):
    kiosk.install("2.0.0")
    lock_dir = kiosk.sw.lock_dir
    with locks.hold(lock_dir, "session", limit_s=600):
        out = kiosk.sw.switch("2.0.0")
    assert out.status == "deferred" and out.reason.startswith("deferred (busy): session")
    with locks.hold(lock_dir, "print", limit_s=60, now=time.time() - 3600):
        out = kiosk.sw.switch("2.0.0")
    assert out.status == "deferred" and "deferred (locked): print held 3600 s (limit 60 s)" in out.reason
    assert kiosk.sw.current() == "1.0.0" and kiosk.sw.state().trial is None
    # A session cannot start while the switch holds the locks; it starts right after.
    started, done = threading.Event(), threading.Event()

    def session() -> None:
        with locks.hold(lock_dir, "session", 60):
            started.set()
            done.wait(10)

    t = threading.Thread(target=session)
    with locks.SwitchGuard(lock_dir, time.time()) as guard:
        assert not guard.busy
        t.start()
        assert not started.wait(0.3)
    assert started.wait(10)
    assert kiosk.sw.switch("2.0.0").status == "deferred"
    done.set()
    t.join(10)
    assert kiosk.sw.switch("2.0.0").status == "switched"


def test_refused_release_writes_nothing(kiosk):
    bundle = kiosk.releases.base / "bundle-1.0.0"
    before = sorted(p.name for p in kiosk.lay.releases.iterdir())
    with pytest.raises(R.ReleaseRejected, match="not_newer"):
        kiosk.installer.check((bundle / R.MANIFEST_FILE).read_bytes(), "1.0.0")
    assert sorted(p.name for p in kiosk.lay.releases.iterdir()) == before


def test_key_list_replay_is_refused_and_not_saved(kiosk, releases):
    newer = B.build_key_list(releases.root, [("rk-1", R.key_text(releases.key), ["kiosk"])], serial=2,
                             now=releases.now)
    kiosk.installer.accept_key_list(json.dumps(newer).encode())
    with pytest.raises(R.ReleaseRejected, match="key_list_replay"):
        kiosk.installer.accept_key_list(releases.key_list)
    assert kiosk.sw.state().key_list["serial"] == 2


def test_kiosk_updater_cli_trusts_installs_reports_and_boots(releases, tmp_path, capsys):
    from kiosk_ui.updater import cli

    root_pub = tmp_path / "release-root.pub"
    root_pub.write_text(R.key_text(releases.root) + "\n")
    (tmp_path / "keys.json").write_bytes(releases.key_list)
    base = ["--root", str(tmp_path / "opt"), "--root-pub", str(root_pub)]
    assert cli.main([*base, "install", str(releases.base / "bundle-1.0.0")]) == 1
    assert "no_key_list" in capsys.readouterr().err
    assert cli.main([*base, "trust", str(tmp_path / "keys.json")]) == 0
    assert json.loads(capsys.readouterr().out)["key_list_serial"] == 1
    assert cli.main([*base, "install", str(tmp_path / "nothing")]) == 1
    assert "not a bundle" in capsys.readouterr().err
    assert cli.main([*base, "install", str(releases.base / "bundle-1.0.0")]) == 0
    assert json.loads(capsys.readouterr().out) == {"installed": "1.0.0"}
    assert cli.main([*base, "boot"]) == 0
    assert json.loads(capsys.readouterr().out)["status"] == "nothing"
    assert cli.main([*base, "status", "--json"]) == 0
    status = json.loads(capsys.readouterr().out)
    assert status["installed"] == ["1.0.0"] and status["current"] is None and status["key_list_serial"] == 1
    assert cli.main([*base, "activate", "1.0.0"]) == 0
    assert cli.main([*base, "activate", "1.0.0"]) == 1
    assert "already_active" in capsys.readouterr().err
    assert cli.main([*base, "switch", "1.0.0"]) == 1
    assert "nothing_to_switch" in capsys.readouterr().err


def test_kiosk_unit_runs_what_current_names():
    import configparser

    from tests.support.processes import REPO

    cp = configparser.ConfigParser(strict=False, interpolation=None)
    cp.optionxform = str
    cp.read(REPO / "deploy" / "systemd" / "kiosk.service")
    assert cp["Service"]["ExecStart"].startswith("/opt/kiosk/current/venv/bin/kiosk ")
    assert cp["Service"]["ExecStartPre"] == "-+/opt/kiosk/committed/venv/bin/kiosk-updater boot"


def test_disk_is_reclaimed_after_commit_and_roll_back(kiosk):
    kiosk.install("2.0.0")
    kiosk.sw.switch("2.0.0")
    kiosk.sw.commit()
    assert sorted(p.name for p in kiosk.lay.releases.iterdir()) == ["1.0.0", "2.0.0"]  # one way back kept
    v4 = kiosk.install("4.0.0")
    kiosk.sw.switch("4.0.0")
    kiosk.sw.rollback("no_broker: test")
    assert sorted(p.name for p in kiosk.lay.releases.iterdir()) == ["1.0.0", "2.0.0"]  # the bad one is gone
    own = {e.sha256 for e in v4.files} - {e.sha256 for e in kiosk.installer.check(
        (kiosk.releases.base / "bundle-2.0.0" / R.MANIFEST_FILE).read_bytes(), None).files}
    assert own and not any((kiosk.lay.objects / sha).exists() for sha in own)
    assert kiosk.sw.current() == "2.0.0"
