"""The kiosk runtime: devices (real or simulated) plus the agent, started and stopped together."""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from typing import Any

from kiosk_ui.agent.agent import KioskAgent
from provisioning.errors import KioskError
from provisioning.settings import KioskConfig

log = logging.getLogger(__name__)


class KioskRuntime:
    def __init__(self, config: KioskConfig) -> None:
        self.config = config
        self.sims: dict[str, Any] = {}
        self.ports: dict[str, str] = {}
        self._lock = threading.Lock()
        self.agent = KioskAgent(config, device_status=self.device_status)

    def device_status(self) -> dict[str, dict[str, Any]]:
        """Per-device status; a device that does not answer is ``unknown``, never fine."""
        from device_drivers.printer import ReceiptPrinter

        out: dict[str, dict[str, Any]] = {}
        url = self.ports.get("printer")
        if url:
            with self._lock:
                try:
                    printer = ReceiptPrinter(url)
                    try:
                        paper = printer.status(4)
                    finally:
                        printer.close()
                    detail = "paper_out" if paper & 0x60 else "paper_low" if paper & 0x0C else "paper_ok"
                    state = "error" if detail == "paper_out" else "idle"
                    out["printer"] = {"state": state, "detail": detail,
                                      "required_action": "load paper" if state == "error" else ""}
                except KioskError as exc:
                    out["printer"] = {"state": "unknown", "detail": str(exc)[:120],
                                      "required_action": "check the printer cable and power"}
        return out

    def start(self, say: Callable[[str], None] | None = None) -> None:
        if self.config.simulated:
            from kiosk_ui.agent.simulated import start_simulators

            self.sims = start_simulators(self.config.data_dir)
            self.ports = {name: str(sim.link) for name, sim in self.sims.items()}
        else:
            self.ports = {k: v for k, v in vars(self.config.devices).items()
                          if v and not k.endswith("_profile")}
        self.agent.start(say=say)

    def stop(self) -> None:
        try:
            self.agent.stop()
        finally:
            for sim in self.sims.values():
                sim.stop()
