"""A simulator's control socket (``--control PATH``): the stdin commands from another process, with
the same answers; hostile lines get errors and the simulator keeps serving."""

from __future__ import annotations

import socket
import stat
import sys

import pytest

from device_drivers.printer import ReceiptPrinter
from foundation.errors import TransportError
from hardware_sim.control_socket import send
from tests.support.processes import Proc


def start(procs, device: str, link, control) -> Proc:
    p = Proc([sys.executable, "-m", "hardware_sim", device, "--link", str(link), "--control", str(control)])
    procs.append(p)
    p.wait_for(f"READY {device} ")
    return p


def test_socket_drives_the_device_the_driver_sees(tmp_path, procs):
    ctl = tmp_path / "printer.ctl"
    p = start(procs, "printer", tmp_path / "printer", ctl)
    assert stat.S_IMODE(ctl.stat().st_mode) == 0o600
    assert send(ctl, {"cmd": "paper", "state": "out"}) == {"ok": True, "cmd": "paper", "paper": "out"}
    printer = ReceiptPrinter(str(tmp_path / "printer"))
    try:
        assert printer.query_status().paper == "out"  # the real driver on the pseudo-terminal sees it
        assert send(ctl, {"cmd": "paper", "state": "ok"})["ok"]
        assert printer.query_status().paper == "ok"
    finally:
        printer.close()
    assert p.send({"cmd": "status"})["paper"] == "ok"  # stdin still works beside the socket


def test_bad_lines_on_the_socket_get_errors(tmp_path, procs):
    ctl = tmp_path / "printer.ctl"
    start(procs, "printer", tmp_path / "printer", ctl)
    assert send(ctl, {"cmd": "fly"})["error"].startswith("unknown command")
    with socket.socket(socket.AF_UNIX) as s:
        s.connect(str(ctl))
        s.sendall(b"not json\n\xff\xfe\n[1]\n")
        got = b""
        while got.count(b"\n") < 3:
            got += s.recv(4096)
    assert [b'"ok": false' in line for line in got.splitlines()] == [True, True, True]
    with socket.socket(socket.AF_UNIX) as s:  # a client that leaves without a newline
        s.connect(str(ctl))
        s.sendall(b'{"cmd": "pap')
    assert send(ctl, {"cmd": "status"})["ok"]


def test_a_client_that_never_reads_is_dropped(tmp_path, procs):
    ctl = tmp_path / "printer.ctl"
    start(procs, "printer", tmp_path / "printer", ctl)
    with socket.socket(socket.AF_UNIX) as hog:
        hog.connect(str(ctl))
        hog.settimeout(10)
        try:
            hog.sendall(b'{"cmd": "status"}\n' * 200_000)  # ~3.6 MB of requests, no reads
        except OSError:
            pass  # dropped while still sending: what should happen
        # The simulator still answers everybody else.
        assert send(ctl, {"cmd": "status"}, timeout=10)["ok"]


def test_long_socket_paths_work(tmp_path, procs):
    deep = tmp_path / ("d" * 60) / ("e" * 60)
    deep.mkdir(parents=True)
    ctl = deep / "id-reader.ctl"
    start(procs, "id-reader", deep / "id-reader", ctl)
    assert send(ctl, {"cmd": "place_card"})["ok"]
    assert send(ctl, {"cmd": "status"})["card"] == "resident-1"


def test_no_socket_is_a_clear_error(tmp_path):
    with pytest.raises(TransportError, match="no simulator control socket"):
        send(tmp_path / "nothing.ctl", {"cmd": "status"})
