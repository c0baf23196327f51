"""The kiosk runtime: devices (real or simulated) plus the agent, started and stopped together.

It is also the agent's ``actions``: what a fleet command or a desired config does on this kiosk
(reboot through the supervisor board when there is one, restart the app, modes, test print,
device power cycles, diagnostics, config reload).
"""

from __future__ import annotations

import logging
import subprocess
import threading
import time
from collections.abc import Callable, Sequence
from typing import Any

from contract import device_status
from contract import topics as fleet
from contract.device_status import DeviceDetail, DeviceStatus
from foundation.errors import DeviceError, KioskError, TransportError
from foundation.settings import KioskConfig
from kiosk_ui.agent.agent import VERSION, KioskAgent

log = logging.getLogger(__name__)

REBOOT_COMMAND = ("systemctl", "reboot")
REBOOT_HOLD_S = 300  # the supervisor's watchdog must not cut power while the Pi reboots on purpose


class KioskRuntime:
    def __init__(self, config: KioskConfig, *, reboot_command: Sequence[str] = REBOOT_COMMAND,
                 on_config: Callable[[dict[str, Any]], None] | None = None,
                 on_mode: Callable[[str], None] | None = None, **agent_kwargs: Any) -> None:
        self.config = config
        self.sims: dict[str, Any] = {}
        self.ports: dict[str, str] = {}
        self._lock = threading.Lock()
        self._printer: Any = None
        self.reboot_command = tuple(reboot_command)
        self.on_config = on_config
        self.on_mode = on_mode
        self.restart_requested = threading.Event()
        self.restart_reason = ""
        self.config_values: dict[str, Any] = {}
        # An app that owns the serial ports itself (the Kivy kiosk) hands them over here instead of
        # letting the runtime open them: ``runtime.supervisor = driver``, ``runtime.test_print_hook =
        # lambda: manager["printer"].check_health("external")``.
        self.supervisor: Any = None
        self.test_print_hook: Callable[[], dict[str, Any]] | None = None
        self._enclosure_c: float | None = None
        self.agent = KioskAgent(config, device_status=self.device_status, actions=self,
                                extra_telemetry=self._extra_telemetry, **agent_kwargs)

    # -- devices ---------------------------------------------------------------------------------
    def printer(self):
        from device_drivers.printer import ReceiptPrinter

        url = self.ports.get("printer")
        if not url:
            raise DeviceError("no printer is configured on this kiosk")
        if self._printer is None:
            # Kiosk configs name the paper width ("generic-80mm"); the driver's profiles drop the unit.
            self._printer = ReceiptPrinter(url, profile=self.config.devices.printer_profile.removesuffix("mm"))
        return self._printer

    def _extra_telemetry(self) -> dict[str, Any]:
        return {"enclosure_temperature": self._enclosure_c}

    def _supervisor_status(self) -> DeviceStatus:
        try:
            st = self.supervisor.status(timeout=2.0)
        except KioskError as exc:
            log.debug("supervisor status not read: %s", exc)  # polled every second: the status says it
            return device_status.build("unknown", DeviceDetail(error="not_answering"))
        self._enclosure_c = st.celsius
        return device_status.build("idle", device_status.supervisor_detail(
            door_open=st.door_open, tamper=bool(st.tamper), celsius=st.celsius, safe_mode=st.safe_mode,
            hold_s=st.hold_s))

    def on_supervisor_event(self, event: Any) -> None:
        # The board's watchdog power-cycling the host is what the fleet alarm rules call host_power_cycled.
        kind = {"watchdog": "host_power_cycled"}.get(event.kind, event.kind)
        if kind in ("host_power_cycled", "tamper", "door", "relay"):
            self.agent.emit(kind, {"device": "supervisor", **{k: v for k, v in event.fields.items()
                                                             if isinstance(v, str | int | float | bool)}})

    def device_status(self) -> dict[str, DeviceStatus]:
        """Per-device status through the contract's one builder; a device that does not answer is
        ``unknown``, never fine."""
        out: dict[str, DeviceStatus] = {}
        if self.supervisor is not None:
            out["supervisor"] = self._supervisor_status()
        if self.ports.get("printer"):
            with self._lock:
                try:
                    st = self.printer().query_status()
                    detail = device_status.printer_detail(
                        known=st.known, paper=st.paper, cover_open=st.cover_open, cutter_error=st.cutter_error,
                        online=st.online, unrecoverable_error=st.unrecoverable_error)
                except TransportError:
                    detail = device_status.printer_detail(known=False, connected=False)
                except KioskError:
                    detail = device_status.printer_detail(known=False)
            out["printer"] = device_status.build("unknown" if detail.error == "not_answering" else "idle", detail)
        return out

    # -- actions (called by the agent after a command is verified) -----------------------------------
    def execute(self, name: str, args: dict[str, Any]) -> tuple[Any, Callable[[], None] | None]:
        if name == "reboot":
            delay = float(args.get("delay", 0))
            return {"rebooting_in": delay}, lambda: self._reboot(delay)
        if name == "restart_app":
            return {"restarting": True}, lambda: self.request_restart("restart_app command")
        if name == "set_mode":
            self.agent.set_mode(args["mode"])
            if self.on_mode:
                self.on_mode(args["mode"])
            return {"mode": self.agent.mode}, None
        if name == "test_print":
            if self.test_print_hook is not None:
                return self.test_print_hook(), None
            with self._lock:
                job = self.printer().test_print()
            if not job.ok:
                raise DeviceError(f"test print failed: {job.reason}")
            return job.to_dict(), None
        if name == "power_cycle":
            return self._power_cycle(args["device"], float(args.get("off_seconds", 3))), None
        if name == "collect_diagnostics":
            return self.diagnostics(), None
        if name == "reload_config":
            return self._reload_config(), None
        raise KioskError(f"command {name!r} has no handler")

    def _reboot(self, delay: float) -> None:
        if delay:
            time.sleep(delay)
        if self.config.simulated:
            # A simulated kiosk must never reboot the machine it runs on: it restarts itself instead.
            self.request_restart("reboot command (simulated kiosk)")
            return
        if self.supervisor is not None:
            try:
                self.supervisor.hold(REBOOT_HOLD_S)
            except KioskError as exc:
                log.warning("supervisor hold before reboot failed: %s", exc)
        log.warning("rebooting on fleet command")
        subprocess.run(list(self.reboot_command), check=False, timeout=30)

    def _power_cycle(self, device: str, off_s: float) -> dict[str, Any]:
        if self.supervisor is None:
            raise DeviceError("no supervisor board is configured; devices cannot be power-cycled")
        ms = self.supervisor.relay_pulse(device, off_s)
        self.agent.emit("device_power_cycled", {"device": device, "off_seconds": off_s})
        return {"device": device, "off_ms": ms}

    def _reload_config(self) -> dict[str, Any]:
        # Unsubscribe and subscribe again: the broker re-sends the retained desired config.
        topic = self.agent._topic("config/desired")
        self.agent.client.unsubscribe(topic)
        self.agent.client.subscribe(topic, fleet.QOS["config/desired"])
        return {"applied_version": self.agent.applied["version"]}

    def diagnostics(self) -> dict[str, Any]:
        a = self.agent
        return {"agent": VERSION, "boot_id": a.boot_id, "mode": a.mode, "uptime": round(time.monotonic() - a.started),
                "journal_depth": a.journal.depth(), "config_version": a.applied["version"],
                "telemetry_interval": a.telemetry_interval,
                "devices": {name: st.to_dict() for name, st in self.device_status().items()},
                "ports": sorted(self.ports), "simulated": self.config.simulated, "telemetry": a.telemetry()}

    def apply_config(self, config: dict[str, Any]) -> None:
        self.config_values = dict(config)
        if self.on_config:
            self.on_config(config)

    def request_restart(self, reason: str) -> None:
        self.restart_reason = reason
        self.restart_requested.set()

    # -- life cycle ------------------------------------------------------------------------------
    def start(self, say: Callable[[str], None] | None = None) -> None:
        if self.config.simulated:
            from kiosk_ui.simulated import start_all

            # The headless kiosk simulates its printer (test prints, paper alarms).
            self.sims = start_all(self.config.data_dir, ("printer",))
            self.ports = {name: str(sim.link) for name, sim in self.sims.items()}
        else:
            self.ports = {k: v for k, v in vars(self.config.devices).items()
                          if v and not k.endswith("_profile")}
        if self.ports.get("supervisor"):
            from device_drivers.supervisor import SupervisorDriver

            try:
                self.supervisor = SupervisorDriver(self.ports["supervisor"], on_event=self.on_supervisor_event)
                # The runtime owns the board link, so it feeds the host watchdog.
                self.supervisor.start_heartbeat()
            except KioskError as exc:
                log.error("supervisor board not available: %s", exc)
        self.agent.start(say=say)

    def stop(self) -> None:
        try:
            self.agent.stop()
        finally:
            if self._printer is not None:
                self._printer.close()
            if self.supervisor is not None:
                self.supervisor.close()
            for sim in self.sims.values():
                sim.stop()
