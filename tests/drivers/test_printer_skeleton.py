"""Thin slice: the printer driver prints Chinese and English through the simulator's pty."""

from __future__ import annotations

import pytest

from device_drivers.printer import ReceiptPrinter
from foundation.errors import DeviceError, DeviceTimeout, TransportError
from tests.support.receipts import wait_receipt


def test_prints_chinese_and_english_and_cuts(sim, tmp_path):
    out = tmp_path / "receipts"
    _, link = sim("printer", out=out)
    printer = ReceiptPrinter(str(link))
    printer.print_lines(["社区自助服务终端 欢迎您", "Community self-service kiosk"])
    printer.close()
    assert wait_receipt(out) == "社区自助服务终端 欢迎您\nCommunity self-service kiosk\n"


def test_paper_out_refuses_job(sim, tmp_path):
    proc, link = sim("printer", out=tmp_path / "r")
    assert proc.send({"cmd": "paper", "state": "out"})["ok"]
    printer = ReceiptPrinter(str(link))
    with pytest.raises(DeviceError, match="paper out"):
        printer.print_lines(["x"])


def test_silent_printer_is_unknown_not_fine(sim):
    proc, link = sim("printer")
    proc.send({"cmd": "mute"})
    printer = ReceiptPrinter(str(link))
    with pytest.raises(DeviceTimeout, match="unknown"):
        printer.status(4)


def test_missing_port_is_a_clear_transport_error(tmp_path):
    with pytest.raises(TransportError, match="cannot open"):
        ReceiptPrinter(str(tmp_path / "nope"))
