"""Simulated ESC/POS thermal receipt printer (Chinese-market 80 mm model).

Powers up in Chinese mode (GB18030), keeps the current receipt as text lines and graphic
blocks, and at every cut writes it to ``--out`` as ``receipt-NNNN.txt`` (UTF-8) and
``receipt-NNNN.png`` (an image that looks like the paper), atomically. Answers ``DLE EOT n``,
sends automatic status back blocks (``GS a``) on every change, and, when a print speed is set,
fills a receive buffer and sends XOFF/XON like the real thing.
"""

from __future__ import annotations

import os
import threading
from pathlib import Path
from typing import Any

from device_drivers import escpos
from hardware_sim.pty_device import SimControlError, SimDevice

PAPER_STATES = ("ok", "low", "out")
BARCODE_NAMES = {73: "CODE128", 69: "CODE39", 4: "CODE39", 67: "EAN13", 2: "EAN13"}


class PrinterSim(SimDevice):
    name = "printer"
    buffer_bytes = 4096

    def __init__(self, out_dir: Path | None = None, width_dots: int = 576) -> None:
        super().__init__(out_dir)
        self.width_dots = width_dots
        self.parser = escpos.EscPosParser()
        self.chinese = True
        self.paper = "ok"
        self.cover_open = False
        self.cutter_error = False
        self.receipts = 0
        self.lines_printed = 0
        self.paper_left: int | None = None  # lines until the roll runs out (fault injection)
        self.bytes_per_s = 0.0  # 0: prints as fast as bytes arrive
        self.asb_mask = 0
        self._asb_sent: bytes | None = None
        self._rx = bytearray()
        self._xoff = False
        self._last_tick: float | None = None
        self._blocks: list[tuple] = []
        self._current = bytearray()
        self._style = {"align": "left", "bold": False, "w": 1, "h": 1}
        self._line_style: dict | None = None
        self._pending_text = ""  # text decoded before a mode switch inside the current line
        self._qr = b""
        self._qr_module = 6
        self._notes: list[dict[str, Any]] = []
        self._notes_lock = threading.Lock()
        if out_dir is not None:
            out_dir.mkdir(parents=True, exist_ok=True)
            self.receipts = len(list(out_dir.glob("receipt-*.txt")))
            from hardware_sim import receipt_render

            receipt_render.warm_up()  # font loading takes long; not while the host waits on us

    # -- receiving -------------------------------------------------------------------------------
    def on_bytes(self, data: bytes, now: float) -> bytes:
        if self.bytes_per_s <= 0 and not self._rx:
            return self._process(data)
        self._rx += data
        return self._flow()

    def tick(self, now: float) -> bytes:
        out = bytearray()
        if self._rx:
            dt = 0.0 if self._last_tick is None else now - self._last_tick
            n = len(self._rx) if self.bytes_per_s <= 0 else int(dt * self.bytes_per_s)
            if n > 0:
                chunk = bytes(self._rx[:n])
                del self._rx[:n]
                out += self._process(chunk)
                self._last_tick = now
            elif self._last_tick is None:
                self._last_tick = now
        else:
            self._last_tick = now
        out += self._flow()
        out += self._asb_if_changed()
        return bytes(out)

    def next_wakeup(self, now: float) -> float:
        return 0.005 if self._rx else 0.05

    def _flow(self) -> bytes:
        if not self._xoff and len(self._rx) > self.buffer_bytes * 3 // 4:
            self._xoff = True
            return bytes([escpos.XOFF])
        if self._xoff and len(self._rx) < self.buffer_bytes // 4:
            self._xoff = False
            return bytes([escpos.XON])
        return b""

    def _printing(self) -> bool:
        return self.paper != "out" and not self.cover_open

    def _process(self, data: bytes) -> bytes:
        answer = bytearray()
        for ev in self.parser.feed(data):
            if isinstance(ev, escpos.StatusRequest):
                answer.append(self._status(ev.n))
            elif isinstance(ev, escpos.AsbEnable):
                self.asb_mask = ev.mask
                self._asb_sent = None  # Epson sends the first block right after enabling
            elif isinstance(ev, escpos.Init):
                self._flush_line()
                self._style = {"align": "left", "bold": False, "w": 1, "h": 1}
                self.chinese = True  # this model's power-on default
            elif isinstance(ev, escpos.ChineseMode):
                self._flush_line(keep_open=True)
                self.chinese = ev.on
            elif not self._printing():
                continue  # mechanism stopped: bytes are lost, as on a real printer
            elif isinstance(ev, escpos.Text):
                self._text(ev.data)
            elif isinstance(ev, escpos.Align):
                self._style["align"] = ev.where
            elif isinstance(ev, escpos.Bold):
                self._style["bold"] = ev.on
            elif isinstance(ev, escpos.Size):
                self._style["w"], self._style["h"] = ev.width, ev.height
            elif isinstance(ev, escpos.Feed):
                self._flush_line()
                for _ in range(ev.lines):
                    self._emit(("text", "", "left", False, 1, 1))
            elif isinstance(ev, escpos.QrStore):
                self._qr = ev.data
            elif isinstance(ev, escpos.QrPrint):
                self._emit(("qr", self._qr, self._style["align"], self._qr_module))
            elif isinstance(ev, escpos.Command) and ev.code[:7] == b"\x1d(k\x03\x001C":
                self._qr_module = max(1, min(16, ev.code[7]))  # GS ( k fn 67: module size
            elif isinstance(ev, escpos.Barcode):
                self._emit(("barcode", ev.data, self._style["align"], 60, ev.system))
            elif isinstance(ev, escpos.Raster):
                self._emit(("raster", ev.width_bytes, ev.height, ev.data, self._style["align"]))
            elif isinstance(ev, escpos.Cut):
                self._cut()
        return bytes(answer)

    def _text(self, data: bytes) -> None:
        parts = data.split(b"\n")
        for k, part in enumerate(parts):
            if part:
                if self._line_style is None:
                    self._line_style = dict(self._style)
                self._current += part
            if k < len(parts) - 1:
                self._flush_line(force=True)

    def _flush_line(self, force: bool = False, keep_open: bool = False) -> None:
        if keep_open and self._current:
            # Mode switch inside a line: decode what we have with the old mode, keep the line open.
            self._pending_text += self._decode(bytes(self._current))
            self._current.clear()
            return
        pending = self._pending_text
        if not (self._current or pending or force):
            return
        s = pending + self._decode(bytes(self._current))
        self._pending_text = ""
        self._current.clear()
        st = self._line_style or self._style
        self._line_style = None
        self._emit(("text", s, st["align"], st["bold"], st["w"], st["h"]))

    def _emit(self, block: tuple) -> None:
        self._blocks.append(block)
        self.lines_printed += 1
        if self.paper_left is not None:
            self.paper_left -= 1
            if self.paper_left <= 0:
                self.paper_left = None
                self.paper = "out"
                self._notes.append({"event": "paper_out", "lines_printed": self.lines_printed})

    def _decode(self, data: bytes) -> str:
        return data.decode("gb18030" if self.chinese else "cp437", errors="replace")

    # -- status ----------------------------------------------------------------------------------
    def _offline(self) -> bool:
        return self.paper == "out" or self.cover_open or self.cutter_error

    def _status(self, n: int) -> int:
        # DLE EOT n replies: fixed bits 1 and 4 set, bits 0 and 7 clear.
        value = 0x12
        if n == 1 and self._offline():
            value |= 0x08
        if n == 2:
            value |= (0x04 if self.cover_open else 0) | (0x20 if self.paper == "out" else 0)
            value |= 0x40 if self.cutter_error else 0
        if n == 3 and self.cutter_error:
            value |= 0x08
        if n == 4:
            if self.paper in ("low", "out"):
                value |= 0x0C
            if self.paper == "out":
                value |= 0x60
        return value

    def _asb_if_changed(self) -> bytes:
        if not self.asb_mask:
            return b""
        block = escpos.asb_block(offline=self._offline(), cover_open=self.cover_open,
                                 cutter_error=self.cutter_error, near_end=self.paper in ("low", "out"),
                                 paper_end=self.paper == "out")
        if block == self._asb_sent:
            return b""
        self._asb_sent = block
        return block

    # -- output ----------------------------------------------------------------------------------
    def _cut(self) -> None:
        self._flush_line()
        blocks, self._blocks = self._blocks, []
        if self.cutter_error:
            self._notes.append({"event": "cut_failed"})
            return
        self.receipts += 1
        if self.out_dir is None:
            return
        text_lines = []
        for b in blocks:
            if b[0] == "text":
                text_lines.append(b[1] + "\n")
            elif b[0] == "qr":
                text_lines.append(f"[QR {b[1].decode('utf-8', 'replace')}]\n")
            elif b[0] == "barcode":
                kind = BARCODE_NAMES.get(b[4], f"BARCODE{b[4]}")
                text_lines.append(f"[{kind} {b[1].decode('ascii', 'replace')}]\n")
            elif b[0] == "raster":
                if not text_lines or not text_lines[-1].startswith("[IMAGE"):
                    text_lines.append("[IMAGE]\n")
        base = self.out_dir / f"receipt-{self.receipts:04d}"
        # Rendering runs off the device loop: the printer keeps answering status meanwhile.
        threading.Thread(target=self._write_receipt, args=(base, blocks, text_lines), daemon=True).start()

    def _write_receipt(self, base: Path, blocks: list[tuple], text_lines: list[str]) -> None:
        png = base.with_suffix(".png")
        try:
            from hardware_sim.receipt_render import render

            tmp = base.with_suffix(".png.tmp")
            render(blocks, self.width_dots).save(tmp, format="PNG")
            os.replace(tmp, png)
        except (OSError, ValueError) as exc:
            with self._notes_lock:
                self._notes.append({"event": "png_failed", "error": str(exc)})
        txt = base.with_suffix(".txt")
        tmp = base.with_suffix(".txt.tmp")
        tmp.write_text("".join(text_lines), encoding="utf-8")
        os.replace(tmp, txt)  # the .txt last: a reader that sees it finds the .png too
        with self._notes_lock:
            self._notes.append({"event": "receipt", "path": str(txt), "png": str(png)})

    def drain_notes(self) -> list[dict[str, Any]]:
        with self._notes_lock:
            notes, self._notes = self._notes, []
        return notes

    def control(self, cmd: dict[str, Any], now: float) -> dict[str, Any] | None:
        name = cmd["cmd"]
        if name == "paper":
            state = cmd.get("state")
            if state not in PAPER_STATES:
                raise SimControlError(f"paper state must be one of {', '.join(PAPER_STATES)}, got {state!r}")
            after = cmd.get("after_lines")
            if after is not None and state == "out":
                self.paper_left = int(after)
                return {"paper": self.paper, "out_after_lines": self.paper_left}
            if state != "out" and self.paper == "out":
                self._blocks.clear()  # the technician tears off the half-printed receipt
            self.paper = state
            self.paper_left = None
            return {"paper": state}
        if name == "cover":
            self.cover_open = bool(cmd.get("open", True))
            return {"cover_open": self.cover_open}
        if name == "cutter":
            self.cutter_error = bool(cmd.get("error", True))
            return {"cutter_error": self.cutter_error}
        if name == "model":
            mm = int(cmd.get("paper_mm", 80))
            if mm not in (58, 80):
                raise SimControlError("paper_mm must be 58 or 80")
            self.width_dots = 384 if mm == 58 else 576
            return {"paper_mm": mm, "width_dots": self.width_dots}
        if name == "speed":
            bps = float(cmd.get("bytes_per_s", 0))
            if bps < 0:
                raise SimControlError("bytes_per_s must be >= 0 (0 = instant)")
            self.bytes_per_s = bps
            return {"bytes_per_s": bps}
        if name == "status":
            return {"paper": self.paper, "cover_open": self.cover_open, "cutter_error": self.cutter_error,
                    "receipts": self.receipts, "lines_printed": self.lines_printed, "chinese": self.chinese,
                    "asb_mask": self.asb_mask}
        return super().control(cmd, now)
