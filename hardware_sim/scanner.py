"""Simulated serial barcode/QR scanner: sends scans given on the control channel, with the
configured suffix, AIM prefix and encoding; in trigger mode it holds them until the host's
trigger command arrives."""

from __future__ import annotations

from typing import Any

from device_drivers.scanner_codec import SUFFIXES, encode_scan
from hardware_sim.pty_device import SimControlError, SimDevice

TRIGGER_ON = bytes.fromhex("16540D")
TRIGGER_OFF = bytes.fromhex("16550D")


class ScannerSim(SimDevice):
    name = "scanner"

    def __init__(self, out_dir=None) -> None:
        super().__init__(out_dir)
        self.suffix = "CR"
        self.aim = True
        self.trigger_mode = False
        self.armed = False
        self.held: list[bytes] = []
        self._rx = bytearray()
        self._out = bytearray()

    def on_bytes(self, data: bytes, now: float) -> bytes:
        self._rx += data
        out = bytearray()
        for cmd, armed in ((TRIGGER_ON, True), (TRIGGER_OFF, False)):
            i = self._rx.find(cmd)
            if i >= 0:
                del self._rx[: i + len(cmd)]
                self.armed = armed
        if len(self._rx) > 64:
            self._rx.clear()
        if self.armed and self.held:
            out += b"".join(self.held)
            self.held.clear()
            self.armed = False
        return bytes(out)

    def tick(self, now: float) -> bytes:
        out, self._out = bytes(self._out), bytearray()
        return out

    def control(self, cmd: dict[str, Any], now: float) -> dict[str, Any] | None:
        name = cmd["cmd"]
        if name == "scan":
            data = cmd.get("data")
            if not isinstance(data, str) or not data:
                raise SimControlError('scan needs "data": a non-empty string')
            sym = cmd.get("symbology", "Q1") if self.aim else None
            frame = encode_scan(data, suffix=self.suffix, aim=sym, encoding=cmd.get("encoding", "utf-8"))
            repeat = int(cmd.get("repeat", 1))
            if self.trigger_mode and not self.armed:
                self.held.append(frame)
                return {"held": True}
            if cmd.get("numbered"):
                # Distinct codes ("data-000001", ...): a stream the de-bounce does not shorten.
                frames = [encode_scan(f"{data}-{i:06d}", suffix=self.suffix, aim=sym) for i in range(repeat)]
                self._out += b"".join(frames)
                return {"bytes": sum(map(len, frames))}
            self._out += frame * repeat
            return {"bytes": len(frame) * repeat}
        if name == "config":
            suffix = cmd.get("suffix", self.suffix)
            if suffix not in SUFFIXES:
                raise SimControlError(f"suffix must be one of {', '.join(SUFFIXES)}")
            self.suffix = suffix
            self.aim = bool(cmd.get("aim", self.aim))
            self.trigger_mode = bool(cmd.get("trigger_mode", self.trigger_mode))
            return {"suffix": self.suffix, "aim": self.aim, "trigger_mode": self.trigger_mode}
        if name == "status":
            return {"suffix": self.suffix, "aim": self.aim, "trigger_mode": self.trigger_mode, "held": len(self.held)}
        return super().control(cmd, now)
