"""The simulator CLI contract: READY line, JSON control, clear errors for bad input."""

from __future__ import annotations

import subprocess
import sys

from tests.support.processes import REPO


def test_link_in_missing_folder_is_refused(tmp_path):
    r = subprocess.run(
        [sys.executable, "-m", "hardware_sim", "printer", "--link", str(tmp_path / "no" / "dir" / "p")],
        capture_output=True, text=True, cwd=REPO, timeout=30,
    )
    assert r.returncode == 2
    assert "cannot create --link" in r.stderr and "does not exist" in r.stderr
    assert "Traceback" not in r.stderr


def test_bad_control_lines_get_errors_and_sim_keeps_serving(sim):
    proc, link = sim("printer")
    assert proc.send({"cmd": "paper", "state": "soggy"})["ok"] is False
    assert proc.send({"cmd": "fly"})["error"].startswith("unknown command")
    proc.proc.stdin.write("not json\n")
    proc.proc.stdin.flush()
    assert "not JSON" in proc.wait_for(lambda s: '"ok": false' in s)
    assert proc.send({"cmd": "status"})["paper"] == "ok"
    assert link.is_symlink()


def test_unplug_and_replug(sim):
    proc, link = sim("printer")
    assert proc.send({"cmd": "unplug"})["ok"]
    assert not link.exists()
    assert proc.send({"cmd": "replug"})["ok"]
    assert link.is_symlink()
