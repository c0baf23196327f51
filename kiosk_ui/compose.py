"""The kiosk's composition root: the one place that builds its parts and wires them together.

A kiosk is made of simulators (``--simulated``), the serial devices, the supervisor board's
driver, the fleet runtime (agent + device status + command actions), the service client, and on a
touch kiosk the Kivy app. :func:`build_app_kiosk` (``kiosk``) and :func:`build_headless_kiosk`
(``kiosk-agent``) build them in dependency order and hand each its collaborators through its
constructor; parts subscribe to the ones that call back (``runtime.watch``, ``add_listener``,
``watch_presence``); no part sets attributes on another. :class:`Kiosk` holds what was built and
closes it in reverse order.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from device_drivers.printer import PrinterProfile
from device_drivers.supervisor import SupervisorDriver
from foundation.errors import ConfigError, KioskError
from foundation.settings import DevicePorts, KioskConfig
from kiosk_ui.agent.runtime import KioskRuntime, configured_ports
from kiosk_ui.devices import Devices

if TYPE_CHECKING:
    from kiosk_ui.app import KioskApp
    from kiosk_ui.simulated import Sim

log = logging.getLogger(__name__)

# The headless kiosk simulates its printer (test prints, paper alarms) and its supervisor board
# (the real firmware core: door, tamper, temperature, the watchdog over the agent's heartbeat).
HEADLESS_SIMULATED = ("printer", "supervisor")


@dataclass
class Kiosk:
    """Everything one kiosk process built; :meth:`close` ends it in reverse order of building."""

    runtime: KioskRuntime | None
    app: KioskApp | None = None
    devices: Devices | None = None
    supervisor: SupervisorDriver | None = None
    sims: dict[str, Sim] = field(default_factory=dict)
    _closed: bool = False

    def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        steps: list[tuple[str, Callable[[], None]]] = []
        if self.runtime is not None:
            steps.append(("fleet runtime", self.runtime.stop))
        if self.devices is not None:
            steps.append(("devices", self.devices.close))
        if self.supervisor is not None:
            steps.append(("supervisor", self.supervisor.close))
        steps += [(f"{name} simulator", sim.stop) for name, sim in self.sims.items()]
        for what, step in steps:
            try:
                step()
            except (KioskError, OSError) as exc:  # one part failing to close must not keep the rest open
                log.warning("closing %s failed: %s", what, exc)


def printer_profile(config: KioskConfig | None) -> str:
    """The configured printer profile, checked now so that a wrong name stops the start, named."""
    name = (config.devices if config is not None else DevicePorts()).printer_profile
    try:
        PrinterProfile.load(name)
    except ConfigError as exc:
        raise ConfigError(str(exc), field="devices.printer_profile") from None
    return name


def start_simulators(data_dir: Path, names: tuple[str, ...] | None = None) -> tuple[dict[str, Sim], dict[str, str]]:
    """Start simulators (all of them, or ``names``); returns them and their ports by kiosk port name."""
    from kiosk_ui import simulated

    sims = simulated.start_all(data_dir) if names is None else simulated.start_all(data_dir, names)
    return sims, {name: str(sim.link) for name, sim in sims.items()}


def open_supervisor(url: str) -> SupervisorDriver | None:
    """The board's driver on ``url`` (None when the kiosk has none or it cannot be opened)."""
    if not url:
        return None
    try:
        return SupervisorDriver(url)
    except KioskError as exc:
        log.warning("supervisor board not available: %s", exc)
        return None


def build_headless_kiosk(config: KioskConfig, **runtime_kwargs: Any) -> tuple[Kiosk, KioskRuntime]:
    """``kiosk-agent``: the runtime drives the printer itself and feeds the board's watchdog."""
    printer_profile(config)
    sims: dict[str, Sim] = {}
    ports = configured_ports(config)
    if config.simulated:
        sims, ports = start_simulators(config.data_dir, HEADLESS_SIMULATED)
    supervisor = open_supervisor(ports.get("supervisor", ""))
    try:
        runtime = KioskRuntime(config, ports=ports, supervisor=supervisor, **runtime_kwargs)
    except BaseException:
        Kiosk(None, supervisor=supervisor, sims=sims).close()
        raise
    if supervisor is not None:
        supervisor.start_heartbeat()  # no app here: the runtime's process is what the watchdog guards
    return Kiosk(runtime, supervisor=supervisor, sims=sims), runtime


def build_app_kiosk(*, config: KioskConfig | None, kiosk_id: str, data_dir: Path, simulated: bool,
                    app_options: dict[str, Any], join_fleet: bool, update_locks: Any = None,
                    agent_options: dict[str, Any] | None = None) -> tuple[Kiosk, KioskApp]:
    """``kiosk``: the app owns the serial devices; the runtime (when the kiosk has a fleet link,
    ``join_fleet``) reports their status, runs their test print and shares the supervisor board."""
    from kiosk_ui.app import KioskApp
    from kiosk_ui.service_client.over_mqtt import MqttServiceClient

    profile = printer_profile(config)
    sims: dict[str, Sim] = {}
    ports = configured_ports(config) if config is not None else {}
    if simulated:
        sims, ports = start_simulators(data_dir)
    kiosk = Kiosk(None, sims=sims)
    try:
        kiosk.supervisor = open_supervisor(ports.pop("supervisor", ""))
        devices = kiosk.devices = Devices(ports, data_dir=data_dir / "devices", printer_profile=profile,
                                            locks=update_locks)
        runtime = backend = None
        if config is not None and join_fleet:
            runtime = kiosk.runtime = KioskRuntime(
                config, ports={}, supervisor=kiosk.supervisor, app_devices=devices.status,
                test_print=lambda: devices.health("printer", "external"), **(agent_options or {}))
            backend = MqttServiceClient(runtime.agent)  # rides on the agent's connection
        app = kiosk.app = KioskApp(kiosk_id=kiosk_id, data_dir=data_dir, devices=devices,
                                   supervisor=kiosk.supervisor, fleet=runtime, backend=backend, sims=sims,
                                   **app_options)
    except BaseException:
        kiosk.close()
        raise
    return kiosk, app
