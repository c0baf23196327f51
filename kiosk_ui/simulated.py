"""Simulated devices for ``kiosk --simulated`` and ``kiosk-agent --simulated``.

Each device is a ``hardware_sim`` simulator on a pseudo-terminal. Its control channel (JSON lines
on stdin, one JSON reply line) stays open, so the demo's "place/remove card" buttons and the UI
tests can act on it; the same commands reach it on ``DATA_DIR/dev/<simulator>.ctl`` (a unix
socket), which is how ``scripts/demo-fault`` causes faults on a running kiosk.
"""

from __future__ import annotations

import ctypes
import importlib
import json
import queue
import signal
import subprocess
import sys
import threading
from pathlib import Path
from typing import Any

from foundation.errors import TransportError

# Kiosk port name -> simulator name; simulators not yet in hardware_sim are skipped.
DEVICES = {"printer": "printer", "id_reader": "id-reader", "card_reader": "card-reader", "scanner": "scanner",
           "supervisor": "supervisor"}


def available(sim_name: str) -> bool:
    from hardware_sim.__main__ import DEVICES as SIMS

    target = SIMS.get(sim_name)
    if target is None:
        return False
    try:
        importlib.import_module(target.split(":")[0])
    except ImportError:
        return False
    return True


def _die_with_parent() -> None:
    """Linux: the simulator gets SIGTERM when the thread that started it dies, so no simulator
    outlives a killed kiosk (start simulators from the main thread)."""
    try:
        ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG
    except (OSError, AttributeError):
        pass  # not Linux/glibc: the kiosk's own stop() still ends its simulators


class Sim:
    def __init__(self, device: str, link: Path, out: Path | None = None, timeout: float = 20.0) -> None:
        self.device = device
        self.link = link
        # Anyone else (scripts/demo-fault, a test) drives the device through this socket; stdin is ours.
        self.control_path = control_path(link.parent, device)
        argv = [sys.executable, "-m", "hardware_sim", device, "--link", str(link), "--control", str(self.control_path)]
        if out is not None:
            argv += ["--out", str(out)]
        self.proc = subprocess.Popen(argv, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                     stderr=subprocess.DEVNULL, text=True, preexec_fn=_die_with_parent)
        self._lines: queue.Queue[str] = queue.Queue()
        self._lock = threading.Lock()
        threading.Thread(target=self._pump, daemon=True).start()
        try:
            first = self._lines.get(timeout=timeout)
        except queue.Empty:
            first = ""
        if not first.startswith(f"READY {device} "):
            self.stop()
            raise TransportError(f"{device} simulator did not start")

    def _pump(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            self._lines.put(line.rstrip("\n"))

    def control(self, cmd: dict[str, Any], timeout: float = 5.0) -> dict[str, Any]:
        with self._lock:
            if self.proc.poll() is not None or self.proc.stdin is None:
                raise TransportError(f"{self.device} simulator is not running")
            self.proc.stdin.write(json.dumps(cmd) + "\n")
            self.proc.stdin.flush()
            while True:
                try:
                    line = self._lines.get(timeout=timeout)
                except queue.Empty:
                    raise TransportError(f"{self.device} simulator did not answer {cmd.get('cmd')!r}") from None
                if line.startswith("{"):
                    return json.loads(line)

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(5)
            except subprocess.TimeoutExpired:
                self.proc.kill()


def control_path(dev_dir: Path, sim_name: str) -> Path:
    """Where a kiosk's simulator listens for control lines: ``DATA_DIR/dev/<simulator>.ctl``."""
    return dev_dir / f"{sim_name}.ctl"


def start_all(data_dir: Path, ports: tuple[str, ...] = tuple(DEVICES)) -> dict[str, Sim]:
    """Start the available simulators for ``ports``; returns kiosk port name -> Sim."""
    dev = data_dir / "dev"
    dev.mkdir(parents=True, exist_ok=True)
    sims: dict[str, Sim] = {}
    try:
        for port in ports:
            name = DEVICES[port]
            if available(name):
                out = data_dir / "receipts" if port == "printer" else None
                sims[port] = Sim(name, dev / name, out)
    except TransportError:
        for s in sims.values():
            s.stop()
        raise
    return sims
