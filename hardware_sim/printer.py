"""Simulated ESC/POS thermal receipt printer (Chinese-market model).

Powers up in Chinese mode (two-byte GB18030), keeps the text of the current receipt, and at
every cut writes it to ``--out`` as ``receipt-NNNN.txt`` (UTF-8), atomically.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from device_drivers import escpos
from hardware_sim.pty_device import SimControlError, SimDevice

PAPER_STATES = ("ok", "low", "out")


class PrinterSim(SimDevice):
    name = "printer"

    def __init__(self, out_dir: Path | None = None) -> None:
        super().__init__(out_dir)
        self.parser = escpos.EscPosParser()
        self.chinese = True
        self.paper = "ok"
        self.cover_open = False
        self.receipts = 0
        self._lines: list[str] = []
        self._current = bytearray()
        self._notes: list[dict[str, Any]] = []
        if out_dir is not None:
            out_dir.mkdir(parents=True, exist_ok=True)
            self.receipts = len(list(out_dir.glob("receipt-*.txt")))

    def _decode(self, data: bytes) -> str:
        return data.decode("gb18030" if self.chinese else "cp437", errors="replace")

    def on_bytes(self, data: bytes, now: float) -> bytes:
        answer = bytearray()
        for ev in self.parser.feed(data):
            if isinstance(ev, escpos.Init):
                self._current.clear()
            elif isinstance(ev, escpos.ChineseMode):
                self._flush_text()
                self.chinese = ev.on
            elif isinstance(ev, escpos.Text):
                if self.paper != "out" and not self.cover_open:
                    self._current += ev.data
            elif isinstance(ev, escpos.Feed):
                self._current += b"\n" * ev.lines
            elif isinstance(ev, escpos.Cut):
                self._cut()
            elif isinstance(ev, escpos.StatusRequest):
                answer.append(self._status(ev.n))
        return bytes(answer)

    def _flush_text(self) -> None:
        if self._current:
            self._lines.append(self._decode(bytes(self._current)))
            self._current.clear()

    def _status(self, n: int) -> int:
        # DLE EOT n replies: fixed bits 1 and 4 set, bit 0 and 7 clear.
        value = 0x12
        if n == 2 and self.cover_open:
            value |= 0x04
        if n == 4:
            if self.paper in ("low", "out"):
                value |= 0x0C
            if self.paper == "out":
                value |= 0x60
        return value

    def _cut(self) -> None:
        self._flush_text()
        body = "".join(self._lines)
        self._lines.clear()
        self.receipts += 1
        if self.out_dir is not None:
            path = self.out_dir / f"receipt-{self.receipts:04d}.txt"
            tmp = path.with_suffix(".tmp")
            tmp.write_text(body, encoding="utf-8")
            os.replace(tmp, path)
            self._notes.append({"event": "receipt", "path": str(path)})

    def drain_notes(self) -> list[dict[str, Any]]:
        notes, self._notes = self._notes, []
        return notes

    def control(self, cmd: dict[str, Any], now: float) -> dict[str, Any] | None:
        if cmd["cmd"] == "paper":
            state = cmd.get("state")
            if state not in PAPER_STATES:
                raise SimControlError(f"paper state must be one of {', '.join(PAPER_STATES)}, got {state!r}")
            self.paper = state
            return {"paper": state}
        if cmd["cmd"] == "cover":
            self.cover_open = bool(cmd.get("open", True))
            return {"cover_open": self.cover_open}
        if cmd["cmd"] == "status":
            return {"paper": self.paper, "cover_open": self.cover_open, "receipts": self.receipts}
        return super().control(cmd, now)
