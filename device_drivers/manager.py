"""Device manager in the UnifiedPOS shape: the one API the kiosk app uses for its peripherals.

Public API
----------
::

    from device_drivers.manager import DeviceConfig, DeviceManager

    mgr = DeviceManager([
        DeviceConfig("printer", "printer", "/dev/serial/by-id/usb-...-if00-port0", profile="generic-80"),
        DeviceConfig("id_reader", "id_reader", "/dev/serial/by-id/usb-...", baudrate=115200),
        DeviceConfig("card_reader", "card_reader", "/dev/serial/by-id/usb-..."),
        DeviceConfig("scanner", "scanner", "/dev/serial/by-id/usb-...", baudrate=9600, profile="generic"),
    ], data_dir="/var/lib/kiosk/devices")
    mgr.start()                       # open + claim + enable every device; failures become "error"
    printer = mgr["printer"]

    printer.status()  # {"name", "kind", "state": closed|idle|busy|error, "detail": {...}, "fault": str,
                      #  "required_action": id | None, "stats": {...}}   (plain dict, JSON-ready;
                      #  state/detail/fault/required_action as contract.device_status builds them)
    printer.device_status()                         # the same as contract.device_status.DeviceStatus
    printer.print_receipt([{"text": "标题", "align": "center", "bold": True, "size": [2, 2]},
                           {"text": "..."}, {"qr": "https://..."}, {"barcode": "A001"},
                           {"logo": "/path/logo.png"}])          # -> JobResult.to_dict()
    mgr["id_reader"].read_card(timeout=10)          # -> samv.Identity (wipe() it at session end)
    mgr["card_reader"].read_social_security(pin_provider, timeout=10)  # -> SocialSecurityData
    mgr["card_reader"].read_uid(timeout=5)          # -> "04A2B3C4D5E680"
    mgr["scanner"].on_scan = callback               # or mgr["scanner"].next_scan(timeout)
    printer.check_health("internal" | "external")   # external = a test print
    mgr.status()                                    # {name: status dict} for devices/{name} topics
    mgr.stop()                                      # disable, release, close; statistics saved

Life cycle per device: ``open`` (configuration checked, nothing touched) -> ``claim`` (port
opened, exclusive) -> ``enable`` (device initialised and checked) -> operations ->
``disable`` -> ``release`` -> ``close``. States: ``closed`` (not open), ``idle`` (open, ready
or waiting to be enabled), ``busy`` (an operation runs), ``error`` (the device or its
connection needs attention; ``required_action`` says what a technician should do).

Reconnecting: each driver's reader thread reconnects after an unplug with capped, jittered
backoff and re-syncs the device (printer: ASB on, status re-read; PN532: wake-up). If the port
is missing at claim time, the manager retries the claim from ``status()`` on the same backoff.
Statistics (cuts, lines printed, communication errors, hours powered, ...) persist in
``data_dir/stats-<name>.json``, written atomically.
"""

from __future__ import annotations

import json
import logging
import os
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from contract import device_status
from contract.device_status import DeviceDetail, DeviceStatus
from foundation.backoff import Backoff
from foundation.errors import ConfigError, DeviceError, DeviceTimeout, KioskError, TransportError

log = logging.getLogger(__name__)

KINDS = ("printer", "id_reader", "card_reader", "scanner")
# Driver faults the printer's paper/cover/cutter detail already states.
_SAID_BY_DETAIL = (None, "paper_out", "cover_open", "cutter_error", "disconnected")
STAT_KEYS = ("cuts", "lines_printed", "jobs_completed", "jobs_failed", "communication_errors", "cards_read",
             "scans", "reconnects")


@dataclass(frozen=True)
class DeviceConfig:
    name: str
    kind: str
    port: str
    baudrate: int = 115200
    profile: str | None = None

    def __post_init__(self) -> None:
        if self.kind not in KINDS:
            raise ConfigError(f"must be one of {', '.join(KINDS)}", field=f"devices.{self.name}.kind")
        if not self.port:
            raise ConfigError("a /dev/serial/by-id/... path or URL is required", field=f"devices.{self.name}.port")
        if "/dev/ttyUSB" in self.port or "/dev/ttyACM" in self.port:
            log.warning("port configured by enumeration name; use /dev/serial/by-id/...",
                        extra={"fields": {"device": self.name, "port": self.port}})


def _default_factory(cfg: DeviceConfig):
    if cfg.kind == "printer":
        from device_drivers.printer import ReceiptPrinter

        return ReceiptPrinter(cfg.port, cfg.baudrate, profile=cfg.profile or "generic-80")
    if cfg.kind == "id_reader":
        from device_drivers.id_reader import IdCardReader

        return IdCardReader(cfg.port, cfg.baudrate)
    if cfg.kind == "card_reader":
        from device_drivers.card_reader import CardReader

        return CardReader(cfg.port, cfg.baudrate)
    from device_drivers.scanner import BarcodeScanner

    return BarcodeScanner(cfg.port, cfg.baudrate, profile=cfg.profile or "generic")


class StatsStore:
    """Per-device counters persisted as JSON, atomically (write a temporary file, rename)."""

    def __init__(self, path: Path | None) -> None:
        self.path = path
        self.values: dict[str, float] = {k: 0 for k in (*STAT_KEYS, "hours_powered")}
        if path is not None and path.exists():
            try:
                saved = json.loads(path.read_text())
                for k, v in saved.items():
                    if k in self.values and isinstance(v, int | float):
                        self.values[k] = v
            except (OSError, ValueError):
                log.warning("statistics file unreadable; starting from zero", extra={"fields": {"path": str(path)}})

    def save(self) -> None:
        if self.path is None:
            return
        self.path.parent.mkdir(parents=True, exist_ok=True)
        tmp = self.path.with_suffix(".tmp")
        tmp.write_text(json.dumps(self.values, indent=1, sort_keys=True))
        os.replace(tmp, self.path)


class Device:
    """One peripheral behind the UnifiedPOS-shaped life cycle."""

    def __init__(
        self,
        config: DeviceConfig,
        *,
        data_dir: str | Path | None = None,
        driver_factory: Callable[[DeviceConfig], Any] = _default_factory,
        clock: Callable[[], float] = time.monotonic,
        backoff: Backoff | None = None,
    ) -> None:
        self.config = config
        self.name = config.name
        self.kind = config.kind
        self.driver_factory = driver_factory
        self.clock = clock
        self.backoff = backoff or Backoff(base=0.5, cap=30.0)
        self.driver: Any = None
        self.opened = self.claimed = self.enabled = False
        self._busy = threading.Lock()
        self._error: str | None = None  # what went wrong last (cleared when the device is fine again)
        self._next_claim = 0.0
        self._enabled_since: float | None = None
        self._want_enabled = False
        self._last_check = 0.0
        self._seen: dict[str, int] = {}
        self.stats = StatsStore(Path(data_dir) / f"stats-{self.name}.json" if data_dir else None)
        self.on_scan: Callable[[Any], None] | None = None
        self._media = "unknown"  # card readers: present / not_present / unknown, from the last read

    # -- life cycle ------------------------------------------------------------------------------
    def open(self) -> None:
        self.opened = True

    def start(self) -> None:
        """open + claim + enable; if the port is missing, the claim is retried later."""
        self.open()
        self._want_enabled = True
        self.claim()
        self.enable()

    def claim(self) -> None:
        if not self.opened:
            raise DeviceError(f"{self.name}: open() before claim()")
        if self.claimed:
            return
        try:
            self.driver = self.driver_factory(self.config)
        except (TransportError, DeviceTimeout) as exc:
            self._error = "disconnected"
            self._next_claim = self.clock() + self.backoff.next_delay()
            raise TransportError(f"{self.name}: {exc}") from None
        self.backoff.reset()
        self._seen = {}
        self.claimed = True
        self._error = None
        if self.kind == "scanner":
            self.driver.on_scan = self._scanned

    def enable(self) -> None:
        self._want_enabled = True
        if not self.claimed:
            raise DeviceError(f"{self.name}: claim() before enable()")
        self.enabled = True
        self._enabled_since = self.clock()
        self.check_health("internal")

    def disable(self) -> None:
        self._account_power()
        self.enabled = self._want_enabled = False
        self._save()

    def release(self) -> None:
        if self.enabled:
            self.disable()
        if self.driver is not None:
            self._collect()
            self.driver.close()
        self.driver = None
        self.claimed = False
        self._save()

    def close(self) -> None:
        self.release()
        self.opened = False

    # -- state -----------------------------------------------------------------------------------
    @property
    def connected(self) -> bool:
        return self.driver is not None and self.driver.link.connected

    @property
    def state(self) -> str:
        if not self.opened:
            return "closed"
        if self._busy.locked():
            return "busy"
        if self._error or (self.claimed and not self.connected) or (self.opened and not self.claimed
                                                                    and self._next_claim):
            return "error"
        if self.kind == "printer" and self.driver is not None and self.enabled:
            if self.driver._fault(self.driver.last_status):
                return "error"  # e.g. cover opened while idle, reported by automatic status back
        return "idle"

    def _retry_claim(self) -> None:
        if self.opened and not self.claimed and self._next_claim and self.clock() >= self._next_claim:
            try:
                self.claim()
                if self._want_enabled:
                    self.enable()
            except KioskError:
                pass

    def detail(self) -> DeviceDetail:
        """CEN/XFS-style detail, in the contract's one shape (``contract.device_status``)."""
        if not self.opened:
            return DeviceDetail()
        connection = "connected" if self.connected else "disconnected"
        error = self._error if self._error not in _SAID_BY_DETAIL else None
        if self.kind == "printer":
            st = self.driver.last_status if self.driver is not None else None
            if not self.connected:
                return device_status.printer_detail(known=False, connected=False)
            if st is None or not st.known:
                return device_status.printer_detail(known=False)
            d = device_status.printer_detail(known=True, paper=st.paper, cover_open=st.cover_open,
                                             cutter_error=st.cutter_error, online=st.online,
                                             unrecoverable_error=st.unrecoverable_error)
            return replace(d, error=d.error or error)
        media = self._media if self.kind in ("id_reader", "card_reader") else None
        return DeviceDetail(connection=connection, media=media, error=error)

    def device_status(self) -> DeviceStatus:
        """This device's status for ``devices/{name}``, built by the contract's one builder."""
        return device_status.build(self.state, self.detail())

    def status(self) -> dict[str, Any]:
        """State, CEN/XFS-style detail, fault and the technician's action id, as a plain dict."""
        self._retry_claim()
        stale = (self.kind == "printer" and self.driver is not None and not self.driver.profile.asb
                 and self.clock() - self._last_check > 5.0)  # no ASB on this model: poll now and then
        if self.driver is not None and (self._error or stale) and self.enabled and self.connected:
            # Back after a replug or a hiccup: re-sync the state before reporting it.
            try:
                self.check_health("internal")
            except KioskError:
                pass
        st = self.device_status()
        self._collect()
        return {"name": self.name, "kind": self.kind, "claimed": self.claimed, "enabled": self.enabled,
                **st.to_dict(), "stats": self.statistics()}

    # -- statistics ------------------------------------------------------------------------------
    def _collect(self) -> None:
        """Fold the driver's counters (which start at zero per connection) into the store."""
        if self.driver is None:
            return
        counters = dict(getattr(self.driver, "counters", {}))
        counters["communication_errors"] = counters.get("communication_errors", 0) + self.driver.link.comm_errors
        counters["reconnects"] = self.driver.link.reconnects
        for k, v in counters.items():
            if k in self.stats.values:
                self.stats.values[k] += v - self._seen.get(k, 0)
                self._seen[k] = v

    def _account_power(self) -> None:
        if self._enabled_since is not None and self.enabled:
            now = self.clock()
            self.stats.values["hours_powered"] += (now - self._enabled_since) / 3600
            self._enabled_since = now

    def statistics(self) -> dict[str, float]:
        self._account_power()
        return {k: round(v, 4) if isinstance(v, float) else v for k, v in self.stats.values.items()}

    def _save(self) -> None:
        self._collect()
        self._account_power()
        self.stats.save()

    # -- health ----------------------------------------------------------------------------------
    def check_health(self, level: str = "internal") -> dict[str, Any]:
        """``internal``: ask the device for its status. ``external``: also exercise it (printer:
        a test print)."""
        if level not in ("internal", "external"):
            raise ConfigError("level must be internal or external", field="level")
        self._require(enabled=False)
        result: dict[str, Any] = {"level": level, "ok": False}
        self._last_check = self.clock()
        try:
            if self.kind == "printer":
                st = self.driver.query_status()
                result["printer"] = st.to_dict()
                fault = self.driver._fault(st)
                self._error = fault  # paper out, cover open, jam, silence: the printer cannot serve
                result["ok"] = fault is None
                if level == "external" and result["ok"]:
                    job = self._op(self.driver.test_print)
                    result["test_print"] = job.to_dict()
                    result["ok"] = job.ok
            elif self.kind == "id_reader":
                try:
                    self.driver.sam_status()
                    self._error = None
                    result["ok"] = True
                except DeviceTimeout:
                    self._error = "not_answering"
                except DeviceError:
                    self._error = "sam"
            elif self.kind == "card_reader":
                try:
                    result["firmware"] = list(self.driver.wake())
                    self._error = None
                    result["ok"] = True
                except (DeviceTimeout, KioskError):
                    self._error = "not_answering"
            else:
                result["ok"] = self.connected
                self._error = None if self.connected else "disconnected"
        except TransportError:
            self._error = "disconnected"
        self._save()
        return result

    # -- operations ------------------------------------------------------------------------------
    def _require(self, enabled: bool = True) -> None:
        if not self.claimed or self.driver is None:
            raise DeviceError(f"{self.name} is not claimed ({self.state})")
        if enabled and not self.enabled:
            raise DeviceError(f"{self.name} is not enabled")

    def _op(self, fn: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
        if not self._busy.acquire(timeout=30):
            raise DeviceTimeout(f"{self.name} stayed busy")
        try:
            return fn(*args, **kwargs)
        finally:
            self._busy.release()
            self._save()

    def print_receipt(self, receipt: Any) -> dict[str, Any]:
        from device_drivers.printer import Receipt

        self._require()
        doc = receipt if isinstance(receipt, Receipt) else Receipt.from_dicts(list(receipt))
        job = self._op(self.driver.print_receipt, doc)
        if not job.ok and job.reason in ("disconnected", "not_answering"):
            self._error = job.reason
        return job.to_dict()

    def read_card(self, timeout: float = 10.0):
        from device_drivers.id_reader import NoCard

        self._require()
        try:
            ident = self._op(self.driver.read_card, timeout)
        except DeviceTimeout as exc:
            self._media = "not_present" if isinstance(exc, NoCard) else "unknown"
            raise
        self._media = "present"
        return ident

    def card_present(self) -> bool:
        """Card readers: whether a card lies on the reader now (nothing is read from it)."""
        self._require()
        present = bool(self._op(self.driver.card_present))
        self._media = "present" if present else "not_present"
        return present

    def wipe(self) -> None:
        """End of a resident's session: forget identity data held by the ID reader driver."""
        if self.driver is not None and hasattr(self.driver, "wipe"):
            self.driver.wipe()

    def read_social_security(self, pin_provider=None, timeout: float = 10.0):
        self._require()
        data = self._op(self.driver.read_social_security, pin_provider, timeout)
        self._media = "present"
        return data

    def read_uid(self, timeout: float = 5.0) -> str:
        self._require()
        uid = self._op(self.driver.read_uid, timeout)
        self._media = "present"
        return uid

    def next_scan(self, timeout: float):
        self._require()
        return self.driver.next_scan(timeout)

    def _scanned(self, scan: Any) -> None:
        if self.enabled and self.on_scan is not None:
            self.on_scan(scan)


class DeviceManager:
    """All peripherals of one kiosk."""

    def __init__(self, configs: list[DeviceConfig], *, data_dir: str | Path | None = None, **kwargs: Any) -> None:
        names = [c.name for c in configs]
        if len(set(names)) != len(names):
            raise ConfigError("device names must be unique", field="devices")
        self.devices = {c.name: Device(c, data_dir=data_dir, **kwargs) for c in configs}

    def __getitem__(self, name: str) -> Device:
        return self.devices[name]

    def start(self) -> dict[str, Any]:
        """open + claim + enable every device; a device that fails is left in ``error``."""
        for d in self.devices.values():
            try:
                d.start()
            except KioskError as exc:
                log.warning("device not ready", extra={"fields": {"device": d.name, "error": str(exc)}})
        return self.status()

    def status(self) -> dict[str, Any]:
        return {name: d.status() for name, d in self.devices.items()}

    def stop(self) -> None:
        for d in self.devices.values():
            d.close()
