"""The kiosk runtime: the kiosk's devices plus the agent that links them to the fleet.

It is built by the composition root (:mod:`kiosk_ui.compose`), which hands it the serial ports, the
supervisor driver and, on a kiosk running the touch app, the app's own device status and test print
(the app owns those serial ports; the runtime never opens a second driver on them).

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
from contract.device_status import DeviceDetail, DeviceStatus
from device_drivers.printer import ReceiptPrinter
from device_drivers.supervisor import SupervisorDriver
from foundation.errors import DeviceError, KioskError, TransportError
from foundation.settings import KioskConfig
from kiosk_ui.agent.agent import VERSION, KioskAgent

log = logging.getLogger(__name__)

REBOOT_COMMAND = ("systemctl", "reboot")
REBOOT_HOLD_S = 300  # the supervisor's watchdog must not cut power while the Pi reboots on purpose


class KioskRuntime:
    """``ports``: serial URLs the runtime drives itself (the printer); ``supervisor``: the board's
    driver, opened by the caller; ``app_devices``/``test_print``: the status and test print of
    devices an app owns. Listeners for desired config and mode subscribe with :meth:`watch`."""

    def __init__(self, config: KioskConfig, *, ports: dict[str, str] | None = None,
                 supervisor: SupervisorDriver | None = None,
                 app_devices: Callable[[], dict[str, dict[str, Any]]] | None = None,
                 test_print: Callable[[], dict[str, Any]] | None = None,
                 reboot_command: Sequence[str] = REBOOT_COMMAND, **agent_kwargs: Any) -> None:
        self.config = config
        self.ports: dict[str, str] = dict(ports if ports is not None else configured_ports(config))
        self._lock = threading.Lock()
        self._printer: ReceiptPrinter | None = None
        self.reboot_command = tuple(reboot_command)
        self._config_listeners: list[Callable[[dict[str, Any]], None]] = []
        self._mode_listeners: list[Callable[[str], None]] = []
        self.restart_requested = threading.Event()
        self.restart_reason = ""
        self.config_values: dict[str, Any] = {}
        self.supervisor = supervisor
        self._app_devices = app_devices
        self._test_print = test_print
        self._enclosure_c: float | None = None
        self._stopped = False
        if supervisor is not None:
            supervisor.add_listener(self.on_supervisor_event)  # door, tamper, watchdog: fleet events
        self.agent = KioskAgent(config, device_status=self.device_status, actions=self,
                                extra_telemetry=self._extra_telemetry, **agent_kwargs)

    def watch(self, *, on_config: Callable[[dict[str, Any]], None], on_mode: Callable[[str], None]) -> None:
        """Call ``on_mode`` with the current mode and ``on_config`` with the last applied config now,
        then again on every change (fleet command or desired config)."""
        self._config_listeners.append(on_config)
        self._mode_listeners.append(on_mode)
        on_mode(self.agent.mode)
        if self.agent.applied["config"]:
            on_config(self.agent.applied["config"])  # the last applied config, until the broker answers

    def emit(self, event_type: str, fields: dict[str, Any]) -> str:
        """An event of this kiosk for the fleet (journaled, forwarded after an outage); its id."""
        return self.agent.emit(event_type, fields)

    # -- devices ---------------------------------------------------------------------------------
    def printer(self) -> ReceiptPrinter:
        url = self.ports.get("printer")
        if not url:
            raise DeviceError("no printer is configured on this kiosk")
        if self._printer is None:
            self._printer = ReceiptPrinter(url, profile=self.config.devices.printer_profile)
        return self._printer

    def _extra_telemetry(self) -> dict[str, Any]:
        return {"enclosure_temperature": self._enclosure_c}

    def _supervisor_status(self, supervisor: SupervisorDriver) -> DeviceStatus:
        try:
            st = supervisor.status(timeout=2.0)
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

    def device_status(self) -> dict[str, DeviceStatus | dict[str, Any]]:
        """Per-device status through the contract's one builder (the app's device manager hands
        dicts with the same fields, which the agent parses); a device that does not answer is
        ``unknown``, never fine."""
        out: dict[str, DeviceStatus | dict[str, Any]] = {}
        if self._app_devices is not None:
            # The app's device manager keeps statistics for the maintenance screen; they stay local.
            out.update({name: {k: v for k, v in st.items() if k != "stats"}
                        for name, st in self._app_devices().items()})
        if self.supervisor is not None:
            out["supervisor"] = self._supervisor_status(self.supervisor)
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
            for listener in self._mode_listeners:
                listener(args["mode"])
            return {"mode": self.agent.mode}, None
        if name == "test_print":
            if self._test_print is not None:
                return self._test_print(), None
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
        self.agent.reload_desired()
        return {"applied_version": self.agent.applied["version"]}

    def diagnostics(self) -> dict[str, Any]:
        a = self.agent
        return {"agent": VERSION, "boot_id": a.boot_id, "mode": a.mode, "uptime": round(time.monotonic() - a.started),
                "journal_depth": a.journal.depth(), "config_version": a.applied["version"],
                "telemetry_interval": a.telemetry_interval,
                "devices": {name: st.to_dict() if isinstance(st, DeviceStatus) else st
                            for name, st in self.device_status().items()},
                "ports": sorted(self.ports), "simulated": self.config.simulated, "telemetry": a.telemetry()}

    def apply_config(self, config: dict[str, Any]) -> None:
        self.config_values = dict(config)
        for listener in self._config_listeners:
            listener(config)

    def request_restart(self, reason: str) -> None:
        self.restart_reason = reason
        self.restart_requested.set()

    # -- life cycle ------------------------------------------------------------------------------
    def start(self, say: Callable[[str], None] | None = None) -> None:
        self.agent.start(say=say)

    def stop(self) -> None:
        """Stop the agent and close the printer driver the runtime opened; the supervisor driver and
        the simulators belong to whoever built them (:mod:`kiosk_ui.compose`). Stopping twice is a no-op."""
        if self._stopped:
            return
        self._stopped = True
        try:
            self.agent.stop()
        finally:
            if self._printer is not None:
                self._printer.close()


def configured_ports(config: KioskConfig) -> dict[str, str]:
    """The serial ports a kiosk config names (``[devices]``, without the profile)."""
    return {k: v for k, v in vars(config.devices).items() if v and not k.endswith("_profile")}
