"""The kiosk app's view of its peripherals: one small interface over the serial drivers.

Screens never touch a driver. :class:`Devices` reads an identity (resident ID card or
social-security card), prints a receipt with an honest outcome, scans a QR voucher, reports each
device's state, and :meth:`Devices.reset` ends a session on the hardware side (reads cancelled,
reader memory wiped, print queue cleared). Drivers for devices still being written are optional:
a missing one makes its services unavailable, never pretends success.
"""

from __future__ import annotations

import hashlib
import importlib
import logging
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from provisioning.errors import DeviceError, DeviceTimeout, KioskError, TransportError
from provisioning.logs import mask_id_number, mask_name

log = logging.getLogger(__name__)

POLL = 0.5  # reads are cut into slices this long so that a session end cancels them promptly


class ReadCancelled(KioskError):
    """The session ended while a card read was waiting."""


class DeviceMissing(DeviceError):
    """This kiosk has no such device (not configured, or its driver is not installed)."""


@dataclass
class ResidentIdentity:
    """Who the resident is, for one session only. :meth:`wipe` empties it."""

    kind: str  # "id_card" | "ss_card"
    name: str
    number: str
    details: dict[str, str] = field(default_factory=dict)

    def masked_name(self) -> str:
        return mask_name(self.name)

    def masked_number(self) -> str:
        return mask_id_number(self.number)

    def ref(self) -> str:
        """A one-way reference the backend keys records by, so it never stores the number."""
        return hashlib.sha256(f"kiosk-resident-v1:{self.kind}:{self.number}".encode()).hexdigest()[:32]

    def wipe(self) -> None:
        self.name = self.number = ""
        self.details = {}
        self.kind = "wiped"

    def __repr__(self) -> str:
        return f"ResidentIdentity({self.kind!r}, {self.masked_name()!r}, {self.masked_number()!r})"


@dataclass
class PrintOutcome:
    ok: bool
    reason: str = ""  # paper_out, cover_open, not_answering, disconnected, no_printer, ...
    warnings: list[str] = field(default_factory=list)


def _optional(module: str, cls: str):
    try:
        return getattr(importlib.import_module(module), cls)
    except (ImportError, AttributeError):
        return None


class Devices:
    """Drivers opened lazily from ``ports`` (kiosk port name -> serial URL or path)."""

    def __init__(self, ports: dict[str, str], *, printer_profile: str = "generic-80") -> None:
        self.ports = {k: v for k, v in ports.items() if v}
        self.printer_profile = printer_profile
        self._drivers: dict[str, Any] = {}
        self._lock = threading.Lock()
        self._cancel = threading.Event()
        self._print_lock = threading.Lock()
        self._pending_prints = 0

    def _driver(self, name: str):
        with self._lock:
            if name in self._drivers:
                return self._drivers[name]
            url = self.ports.get(name)
            if not url:
                raise DeviceMissing(f"no {name.replace('_', ' ')} configured")
            if name == "printer":
                from device_drivers.printer import ReceiptPrinter

                drv = ReceiptPrinter(url, profile=self.printer_profile)
            elif name == "id_reader":
                from device_drivers.id_reader import IdCardReader

                drv = IdCardReader(url)
            elif name == "card_reader":
                cls = _optional("device_drivers.card_reader", "CardReader")
                if cls is None:
                    raise DeviceMissing("the social-security card reader driver is not installed")
                drv = cls(url)
            elif name == "scanner":
                cls = _optional("device_drivers.scanner", "Scanner")
                if cls is None:
                    raise DeviceMissing("the scanner driver is not installed")
                drv = cls(url)
            else:
                raise DeviceMissing(f"unknown device {name!r}")
            self._drivers[name] = drv
            return drv

    def has(self, name: str) -> bool:
        return name in self.ports

    # -- identification --------------------------------------------------------------------------
    def read_identity(self, kind: str, timeout: float) -> ResidentIdentity:
        """Wait up to ``timeout`` s for the card. Raises DeviceTimeout (no card), ReadCancelled,
        DeviceError (the card moved or the reader failed) or TransportError (reader unreachable)."""
        self._cancel.clear()
        waited = 0.0
        while True:
            if self._cancel.is_set():
                raise ReadCancelled("session ended")
            slice_ = min(POLL, timeout - waited)
            if slice_ <= 0:
                raise DeviceTimeout(f"no card within {timeout:g} s")
            try:
                return self._read_once(kind, slice_)
            except DeviceTimeout as exc:
                if type(exc).__name__ != "NoCard" and "no " not in str(exc).lower():
                    raise
                waited += slice_

    def _read_once(self, kind: str, timeout: float) -> ResidentIdentity:
        if kind == "id_card":
            ident = self._driver("id_reader").read_card(timeout)
            try:
                return ResidentIdentity("id_card", ident.name, ident.id_number,
                                        {"valid_until": ident.valid_until, "card_type": ident.card_type})
            finally:
                ident.wipe()  # our copy is the only one kept for the session
        if kind == "ss_card":
            card = self._driver("card_reader").read_social_security(timeout)
            try:
                return ResidentIdentity("ss_card", getattr(card, "name", ""), getattr(card, "card_number", ""),
                                        {"valid_until": str(getattr(card, "valid_until", "")),
                                         "issuer": str(getattr(card, "issuer", ""))})
            finally:
                if hasattr(card, "wipe"):
                    card.wipe()
        raise DeviceMissing(f"no reader for identification {kind!r}")

    def scan(self, timeout: float) -> str:
        scanner = self._driver("scanner")
        return str(scanner.read(timeout))

    # -- printing --------------------------------------------------------------------------------
    def print_receipt(self, items: list[dict], progress: Callable[[float], None] | None = None) -> PrintOutcome:
        """Print one receipt; the outcome says honestly whether it came out, and if not, why."""
        from device_drivers.printer import Receipt

        with self._print_lock:
            if self._cancel.is_set():
                return PrintOutcome(False, "cancelled")
            if progress:
                progress(0.1)
            try:
                printer = self._driver("printer")
                result = printer.print_receipt(Receipt.from_dicts(items))
            except DeviceMissing:
                return PrintOutcome(False, "no_printer")
            except TransportError:
                return PrintOutcome(False, "disconnected")
            except DeviceError as exc:
                return PrintOutcome(False, str(exc)[:80])
            if progress:
                progress(1.0)
            return PrintOutcome(result.ok, result.reason or "", list(result.warnings))

    def test_print(self) -> PrintOutcome:
        try:
            r = self._driver("printer").test_print()
        except (DeviceError, TransportError) as exc:
            return PrintOutcome(False, str(exc)[:80])
        return PrintOutcome(r.ok, r.reason or "")

    # -- state -----------------------------------------------------------------------------------
    def status(self) -> dict[str, dict[str, str]]:
        """Per-device state for the fleet and the out-of-service decision; unknown is not fine."""
        out: dict[str, dict[str, str]] = {}
        for name in self.ports:
            try:
                drv = self._driver(name)
            except (DeviceError, TransportError) as exc:
                out[name] = {"state": "error", "detail": str(exc)[:80]}
                continue
            if name == "printer":
                try:
                    st = drv.query_status()
                except (DeviceError, TransportError) as exc:
                    out[name] = {"state": "unknown", "detail": str(exc)[:80]}
                    continue
                if not st.known:
                    out[name] = {"state": "unknown", "detail": "not answering"}
                elif st.paper == "out" or st.cover_open:
                    out[name] = {"state": "error", "detail": "paper_out" if st.paper == "out" else "cover_open"}
                else:
                    out[name] = {"state": "idle", "detail": f"paper_{st.paper}"}
            else:
                connected = getattr(getattr(drv, "link", None), "connected", None)
                state = "idle" if connected is None or connected else "error"
                out[name] = {"state": state, "detail": "" if state == "idle" else "disconnected"}
        return out

    def reset(self) -> None:
        """End of session: cancel waiting reads, wipe reader memory, drop queued prints."""
        self._cancel.set()
        with self._lock:
            drivers = dict(self._drivers)
        for name, drv in drivers.items():
            wipe = getattr(drv, "wipe", None) or getattr(drv, "reset", None)
            if wipe is not None and name != "printer":
                try:
                    wipe()
                except KioskError as exc:
                    log.warning("device reset failed", extra={"fields": {"device": name, "why": str(exc)[:80]}})

    def begin_session(self) -> None:
        self._cancel.clear()

    def close(self) -> None:
        self.reset()
        with self._lock:
            for drv in self._drivers.values():
                try:
                    drv.close()
                except KioskError:
                    pass
            self._drivers.clear()
