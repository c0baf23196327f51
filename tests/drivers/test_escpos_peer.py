"""An independent peer: python-escpos's serial printer prints to our printer simulator."""

from __future__ import annotations

import pytest

from tests.support.receipts import wait_receipt

escpos_printer = pytest.importorskip("escpos.printer")


def test_python_escpos_serial_printer_prints_to_the_simulator(sim, tmp_path):
    out = tmp_path / "r"
    _, link = sim("printer", out=out)
    p = escpos_printer.Serial(devfile=str(link), baudrate=115200, timeout=1)
    lines = ["Community kiosk", "Receipt 0001", "Thank you"]
    p.set(align="center", bold=True)
    p.textln(lines[0])
    p.set(align="left", bold=False)
    p.textln(lines[1])
    p.qr("https://kiosk.example.invalid/r/0001", native=True)
    p.barcode("0001", "CODE39", function_type="B")
    p.textln(lines[2])
    p.cut()
    p.close()
    text = wait_receipt(out)
    printed = [s for s in text.splitlines() if s and not s.startswith("[")]
    assert printed == lines
    assert "[QR https://kiosk.example.invalid/r/0001]" in text
    assert "[CODE39 0001]" in text
