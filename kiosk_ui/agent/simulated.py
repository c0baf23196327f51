"""Start the kiosk's devices as hardware simulators on pseudo-terminals (``--simulated``)."""

from __future__ import annotations

import subprocess
import sys
import threading
from pathlib import Path

from provisioning.errors import TransportError


class SimulatedDevice:
    def __init__(self, device: str, link: Path, out: Path | None = None) -> None:
        self.device = device
        self.link = link
        argv = [sys.executable, "-m", "hardware_sim", device, "--link", str(link)]
        if out is not None:
            argv += ["--out", str(out)]
        self.proc = subprocess.Popen(argv, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                     stderr=subprocess.DEVNULL, text=True)
        self._ready = threading.Event()
        threading.Thread(target=self._pump, daemon=True).start()
        if not self._ready.wait(20):
            self.stop()
            raise TransportError(f"{device} simulator did not start")

    def _pump(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            if line.startswith(f"READY {self.device} "):
                self._ready.set()

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(5)
            except subprocess.TimeoutExpired:
                self.proc.kill()


def start_simulators(data_dir: Path, devices: tuple[str, ...] = ("printer",)) -> dict[str, SimulatedDevice]:
    dev_dir = data_dir / "dev"
    dev_dir.mkdir(parents=True, exist_ok=True)
    started: dict[str, SimulatedDevice] = {}
    for name in devices:
        out = data_dir / "receipts" if name == "printer" else None
        started[name] = SimulatedDevice(name, dev_dir / name, out)
    return started
