"""Serve a simulated device on a pseudo-terminal, with JSON-line control on stdin.

The contract (see the README): a pseudo-terminal is created, PATH becomes a symlink to it,
``READY DEVICE PATH`` is printed once it serves, control commands are read as JSON lines on
stdin, and the simulator runs until SIGTERM. Bytes the device sends are paced at the configured
baud rate, as a real UART would deliver them.
"""

from __future__ import annotations

import json
import logging
import os
import random
import selectors
import signal
import sys
import termios
import time
import tty
from pathlib import Path
from typing import Any

from foundation.errors import KioskError
from hardware_sim.control_socket import ControlListener

log = logging.getLogger(__name__)


class SimDevice:
    """Device side of a serial protocol. Subclasses override the hooks; time is passed in."""

    name = "device"

    def __init__(self, out_dir: Path | None = None) -> None:
        self.out_dir = out_dir

    def on_bytes(self, data: bytes, now: float) -> bytes:
        """Bytes from the host arrive; return the bytes the device answers."""
        return b""

    def tick(self, now: float) -> bytes:
        """Called often; return bytes the device sends on its own (status, events)."""
        return b""

    def control(self, cmd: dict[str, Any], now: float) -> dict[str, Any] | None:
        """A control command from stdin; return a reply object printed as a JSON line, or None."""
        raise SimControlError(f"unknown command {cmd.get('cmd')!r} for {self.name}")

    def next_wakeup(self, now: float) -> float:
        """Seconds until ``tick`` needs to run again."""
        return 0.05

    def drain_notes(self) -> list[dict[str, Any]]:
        """Events to announce on stdout as JSON lines (a receipt written, paper ran out)."""
        return []


class SimControlError(KioskError):
    """A control command on stdin was malformed or unknown."""


class PtyServer:
    """Owns the pseudo-terminal, the PATH symlink, pacing, faults and the control loop."""

    def __init__(self, device: SimDevice, link: Path, baud: int = 115200, rng: random.Random | None = None):
        self.device = device
        self.link = Path(link)
        self.baud = baud
        self.rng = rng or random.Random()
        self.master: int | None = None
        self.slave: int | None = None
        self.plugged = False
        self.garble_rate = 0.0
        self.delay = 0.0  # extra answer latency, seconds
        self.mute = False  # stop answering
        self._outq = bytearray()
        self._next_send = 0.0
        self._stop = False

    # -- pseudo-terminal life cycle -------------------------------------------------------------
    def plug(self) -> None:
        master, slave = os.openpty()
        tty.setraw(slave)
        attrs = termios.tcgetattr(slave)
        attrs[3] &= ~termios.ECHO
        termios.tcsetattr(slave, termios.TCSANOW, attrs)
        os.set_blocking(master, False)
        self.master, self.slave = master, slave
        target = os.ttyname(slave)
        tmp = self.link.with_name(self.link.name + ".tmp")
        if tmp.is_symlink() or tmp.exists():
            tmp.unlink()
        os.symlink(target, tmp)
        os.replace(tmp, self.link)  # atomic: readers never see a half-made link
        self.plugged = True

    def unplug(self) -> None:
        if self.link.is_symlink():
            self.link.unlink()
        for fd in (self.master, self.slave):
            if fd is not None:
                os.close(fd)
        self.master = self.slave = None
        self.plugged = False
        self._outq.clear()

    # -- output pacing ---------------------------------------------------------------------------
    def send(self, data: bytes) -> None:
        if data and not self.mute:
            self._outq += data

    def _garble(self, data: bytes) -> bytes:
        if self.garble_rate <= 0:
            return data
        out = bytearray(data)
        for i in range(len(out)):
            if self.rng.random() < self.garble_rate:
                out[i] ^= 1 << self.rng.randrange(8)
        return bytes(out)

    def _flush(self, now: float) -> None:
        if not self._outq or self.master is None or now < self._next_send:
            return
        # Send what the line could have carried since the last write, at least one byte.
        chunk = max(1, min(len(self._outq), int(self.baud / 10 * 0.005)))
        data = self._garble(bytes(self._outq[:chunk]))
        try:
            n = os.write(self.master, data)
        except OSError:  # full (BlockingIOError) or the host side is gone: try again next round
            return
        del self._outq[:n]
        self._next_send = max(now, self._next_send) + n * 10 / self.baud

    # -- control ---------------------------------------------------------------------------------
    def _control(self, line: str, now: float) -> dict[str, Any]:
        try:
            cmd = json.loads(line)
        except json.JSONDecodeError as exc:
            return {"ok": False, "error": f"not JSON: {exc}"}
        if not isinstance(cmd, dict) or not isinstance(cmd.get("cmd"), str):
            return {"ok": False, "error": 'expected an object like {"cmd": "..."}'}
        name = cmd["cmd"]
        try:
            if name == "unplug":
                self.unplug()
                return {"ok": True, "cmd": name}
            if name == "replug":
                if not self.plugged:
                    self.plug()
                return {"ok": True, "cmd": name, "path": str(self.link)}
            if name == "garble":
                rate = float(cmd.get("rate", 0.01))
                if not 0 <= rate <= 1:
                    raise SimControlError("rate must be between 0 and 1")
                self.garble_rate = rate
                return {"ok": True, "cmd": name, "rate": rate}
            if name == "slow":
                self.delay = float(cmd.get("seconds", 0.5))
                return {"ok": True, "cmd": name, "seconds": self.delay}
            if name == "pending":  # bytes queued but not yet sent: tests wait for 0 instead of sleeping
                return {"ok": True, "cmd": name, "bytes": len(self._outq)}
            if name in ("mute", "stop_answering"):
                self.mute = bool(cmd.get("on", True))
                return {"ok": True, "cmd": name, "on": self.mute}
            reply = self.device.control(cmd, now)
            return {"ok": True, "cmd": name, **(reply or {})}
        except (SimControlError, ValueError, TypeError, KeyError) as exc:
            return {"ok": False, "cmd": name, "error": str(exc)}

    # -- main loop -------------------------------------------------------------------------------
    def serve(self, ready_name: str, stdin=None, stdout=None, control: Path | None = None) -> None:
        """Serve until SIGTERM; ``control`` is a unix socket path taking the stdin commands too."""
        stdin = stdin if stdin is not None else sys.stdin
        stdout = stdout if stdout is not None else sys.stdout
        signal.signal(signal.SIGTERM, lambda *_: setattr(self, "_stop", True))
        signal.signal(signal.SIGINT, lambda *_: setattr(self, "_stop", True))
        self.plug()
        sel = selectors.DefaultSelector()
        listener = None
        if control is not None:
            listener = ControlListener(control, lambda line: self._control(line, time.monotonic()))
            sel.register(listener.sock, selectors.EVENT_READ, "listen")
        print(f"READY {ready_name} {self.link}", file=stdout, flush=True)
        try:
            sel.register(stdin, selectors.EVENT_READ, "stdin")
        except (ValueError, OSError):
            pass  # no usable stdin (closed or a file): run without control commands
        pending: list[tuple[float, bytes]] = []
        registered_master: int | None = None
        while not self._stop:
            now = time.monotonic()
            if registered_master != self.master:
                if registered_master is not None:
                    try:
                        sel.unregister(registered_master)
                    except (KeyError, ValueError):
                        pass
                if self.master is not None:
                    sel.register(self.master, selectors.EVENT_READ, "pty")
                registered_master = self.master
            timeout = min(self.device.next_wakeup(now), 0.05)
            if self._outq:
                timeout = min(timeout, max(0.0, self._next_send - now))
            if pending:
                timeout = min(timeout, max(0.0, pending[0][0] - now))
            for key, _ in sel.select(timeout):
                now = time.monotonic()
                if key.data == "listen" and listener is not None:
                    conn = listener.accept()
                    if conn is not None:
                        sel.register(conn, selectors.EVENT_READ, "control")
                    continue
                if key.data == "control" and listener is not None:
                    if not listener.readable(key.fileobj):  # type: ignore[arg-type]
                        sel.unregister(key.fileobj)
                    continue
                if key.data == "stdin":
                    line = stdin.readline()
                    if not line:
                        sel.unregister(stdin)
                        continue
                    if line.strip():
                        print(json.dumps(self._control(line, now), ensure_ascii=False), file=stdout, flush=True)
                elif key.data == "pty" and self.master is not None:
                    try:
                        data = os.read(self.master, 4096)
                    except (BlockingIOError, OSError):
                        continue
                    if self.mute or not data:
                        continue
                    answer = self.device.on_bytes(data, now)
                    if answer:
                        pending.append((now + self.delay, answer))
            now = time.monotonic()
            while pending and pending[0][0] <= now:
                self.send(pending.pop(0)[1])
            if self.plugged:
                self.send(self.device.tick(now))
                for note in self.device.drain_notes():
                    print(json.dumps(note, ensure_ascii=False), file=stdout, flush=True)
            self._flush(now)
        if listener is not None:
            listener.close()
        self.unplug()
