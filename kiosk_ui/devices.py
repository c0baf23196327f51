"""The kiosk app's view of its peripherals: one small interface over the serial drivers.

Screens never touch a driver. :class:`Devices` reads an identity (resident ID card or
social-security card), prints a receipt with an honest outcome, scans a QR voucher, reports each
device's state, and :meth:`Devices.reset` ends a session on the hardware side (reads cancelled,
reader memory wiped, print queue cleared).

A card serves only the resident session in which it was placed: a reader must have been seen
empty since the previous session ended (:meth:`Devices.new_resident`) before a card on it is read,
so a card left behind by the previous resident is never read for the next one; they are asked to
take it away and place their own (lifting one's own card and placing it again also clears it). Drivers for devices still being written are optional:
a missing one makes its services unavailable, never pretends success.
"""

from __future__ import annotations

import contextlib
import hashlib
import hmac
import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from foundation.errors import DeviceError, DeviceTimeout, KioskError, NothingPresented, TransportError
from foundation.logs import mask_id_number, mask_name

log = logging.getLogger(__name__)

POLL = 0.5  # reads are cut into slices this long so that a session end cancels them promptly
LEFT_CARD_POLL = 0.1  # looks at a card from before this session this often, to catch it lifted and placed again
READERS = {"id_card": "id_reader", "ss_card": "card_reader"}  # identification kind -> its card reader


class ReadCancelled(KioskError):
    """The session ended while a card read was waiting."""


class _LeftCardWait(DeviceTimeout):
    """Internal: the card on the reader lay there before this resident began; keep waiting."""


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

    def ref(self, key: bytes) -> str:
        """A one-way reference the backend keys records by, so it never stores the number.

        Keyed (HMAC-SHA-256 with the fleet's resident-reference key, which the controller's database
        never holds): an ID number has few enough possible values that a plain hash of it could be
        reversed by trying them all."""
        if len(key) < 16:
            raise ValueError("the resident reference key must be at least 16 bytes")
        return hmac.new(key, f"kiosk-resident-v2:{self.kind}:{self.number}".encode(), hashlib.sha256).hexdigest()[:32]

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


class Devices:
    """The kiosk's peripherals through :class:`device_drivers.manager.DeviceManager`.

    ``ports`` maps a kiosk port name (printer, id_reader, card_reader, scanner) to its serial URL.
    """

    def __init__(self, ports: dict[str, str], *, data_dir=None, printer_profile: str = "generic-80",
                 sleep: Callable[[float], None] = time.sleep, locks: Any = None) -> None:
        from device_drivers.manager import KINDS, DeviceConfig, DeviceManager

        self.ports = {k: v for k, v in ports.items() if v and k in KINDS}
        configs = [DeviceConfig(name, name, url, profile=printer_profile if name == "printer" else None)
                   for name, url in self.ports.items()]
        self.manager = DeviceManager(configs, data_dir=data_dir)
        self._started = threading.Event()
        self._start_lock = threading.Lock()
        # Session generation: a read belongs to the session it started in and stops once ``cancel``
        # moves on. ``cancel`` runs on the UI thread, so a resident who starts right after the previous
        # session ended can never have their read cancelled by that session's (late) reset.
        self.session = 0
        # Resident session number, and per reader the resident session in which it was last seen
        # empty: a card is read only if its reader has been empty since this resident began.
        self.resident = 0
        self._seen_empty: dict[str, int] = {}
        self._sleep = sleep
        self._io_lock = threading.Lock()  # one reader slice or one wipe at a time
        self._print_lock = threading.Lock()
        # Prints and card reads hold the update lock (kiosk_ui/update_hooks.ActivityLocks): no
        # release switch in the middle of one.
        self.locks = locks

    def start(self) -> None:
        """Open, claim and enable every device (a failing one is left in ``error``, not raised)."""
        with self._start_lock:
            if not self._started.is_set():
                self.manager.start()
                self._started.set()

    def _dev(self, name: str):
        if name not in self.ports:
            raise DeviceMissing(f"no {name.replace('_', ' ')} configured")
        self.start()
        dev = self.manager[name]
        if dev.state == "closed" or not dev.claimed:
            # Faults such as paper out are reported by the operation itself, with its reason.
            raise TransportError(f"{name.replace('_', ' ')} is not available ({dev.state})")
        return dev

    def has(self, name: str) -> bool:
        return name in self.ports

    # -- identification --------------------------------------------------------------------------
    def read_identity(self, kind: str, timeout: float, pin: str = "", session: int | None = None,
                      on_left_card: Callable[[], None] | None = None) -> ResidentIdentity:
        """Wait up to ``timeout`` s for the card (or QR voucher), within ``session`` (default: the
        current one). A card that has lain on the reader since before this resident began is not
        read: ``on_left_card`` is called once and the read waits for it to go and a card to come.
        Raises DeviceTimeout (nothing presented), ReadCancelled (the session ended), DeviceError
        (the card moved, the reader failed, an unreadable code; the social-security card's
        :class:`~device_drivers.iso7816.PinRequired`, ``PinWrong`` and ``PinBlocked``) or
        TransportError (reader unreachable). The read holds the update lock (no release switch in
        the middle of it)."""
        with self._update_lock("card_read"):
            return self._read_identity(kind, timeout, pin, self.session if session is None else session,
                                       on_left_card)

    def _update_lock(self, activity: str) -> contextlib.AbstractContextManager:
        return self.locks.hold(activity) if self.locks is not None else contextlib.nullcontext()

    def _read_identity(self, kind: str, timeout: float, pin: str, session: int,
                       on_left_card: Callable[[], None] | None) -> ResidentIdentity:
        reader = READERS.get(kind)
        waited = 0.0
        told = False
        while True:
            slice_ = min(POLL, timeout - waited)
            if slice_ <= 0:
                raise DeviceTimeout(f"nothing presented within {timeout:g} s")
            try:
                with self._io_lock:
                    if self.session != session:
                        raise ReadCancelled("session ended")
                    if reader is not None and self._seen_empty.get(reader) != self.resident:
                        if self._dev(reader).card_present():
                            if not told and on_left_card is not None:
                                on_left_card()
                            told = True
                            raise _LeftCardWait("a card from before this resident is on the reader")
                        self._seen_empty[reader] = self.resident
                    return self._read_once(kind, slice_, pin)
            except _LeftCardWait:
                self._sleep(LEFT_CARD_POLL)  # outside the lock: the end-of-session wipe may run meanwhile
                waited += LEFT_CARD_POLL
            except NothingPresented:
                waited += slice_  # the reader answered "no card yet": next slice

    def reader_cleared(self, reader: str) -> bool:
        """Whether ``reader`` has been seen empty since this resident began (its card then counts)."""
        return self._seen_empty.get(reader) == self.resident

    def new_resident(self) -> None:
        """A resident session ended (UI thread): cards on the readers now belong to the past."""
        self.resident += 1

    def cards_present(self) -> set[str]:
        """The card readers with a card on them now (a reader that cannot tell is left out). A reader
        seen empty here is cleared for the current resident: whatever is placed on it next is theirs."""
        found = set()
        with self._io_lock:
            for reader in READERS.values():
                if reader in self.ports:
                    try:
                        if self._dev(reader).card_present():
                            found.add(reader)
                        else:
                            self._seen_empty[reader] = self.resident
                    except KioskError as exc:
                        log.info("card presence unknown", extra={"fields": {"device": reader, "why": str(exc)[:80]}})
        return found

    def _read_once(self, kind: str, timeout: float, pin: str = "") -> ResidentIdentity:
        if kind == "id_card":
            ident = self._dev("id_reader").read_card(timeout)
            try:
                return ResidentIdentity("id_card", ident.name, ident.id_number,
                                        {"valid_until": ident.valid_until, "card_type": ident.card_type,
                                         "birth": ident.birth})
            finally:
                ident.wipe()  # our copy is the only one kept for the session
        if kind == "ss_card":
            # The PIN goes straight to the card; it is never stored or logged.
            card = self._dev("card_reader").read_social_security((lambda: pin) if pin else None, timeout)
            try:
                return ResidentIdentity("ss_card", card.name, card.card_number,
                                        {"valid_until": card.expiry_date, "issuer": card.issuing_org,
                                         "birth": card.birth_date})
            finally:
                if hasattr(card, "wipe"):
                    card.wipe()
        if kind == "qr_voucher":
            scan = self._dev("scanner").next_scan(timeout)
            if scan is None:
                raise NothingPresented("no code scanned")
            data = getattr(scan, "data", None)
            if not isinstance(data, str):
                raise DeviceError(f"unreadable code: {getattr(scan, 'reason', 'garbled')}")
            return ResidentIdentity("qr_voucher", "", data.strip())
        raise DeviceMissing(f"no reader for identification {kind!r}")

    # -- printing --------------------------------------------------------------------------------
    def print_receipt(self, items: list[dict]) -> PrintOutcome:
        """Print one receipt; the outcome says honestly whether it came out, and if not, why."""
        with self._print_lock, self._update_lock("print"):
            try:
                job = self._dev("printer").print_receipt(items)
            except DeviceMissing:
                return PrintOutcome(False, "no_printer")
            except TransportError:
                return PrintOutcome(False, "disconnected")
            except DeviceError as exc:
                return PrintOutcome(False, str(exc)[:80])
            return PrintOutcome(job["status"] == "completed", job.get("reason") or "", list(job.get("warnings", [])))

    def health(self, name: str, level: str = "internal") -> dict[str, Any]:
        """The manager's health check of one device (``external`` on the printer prints a test page)."""
        return self._dev(name).check_health(level)

    def test_print(self) -> PrintOutcome:
        try:
            r = self._dev("printer").check_health("external")
        except (DeviceError, TransportError) as exc:
            return PrintOutcome(False, str(exc)[:80])
        ok = r.get("ok", r.get("status") in ("ok", "completed"))
        return PrintOutcome(bool(ok), str(r.get("reason") or r.get("detail") or ""))

    # -- state -----------------------------------------------------------------------------------
    def status(self) -> dict[str, dict[str, Any]]:
        """Per-device status from the manager (state closed/idle/busy/error, detail, required action)."""
        self.start()
        try:
            return self.manager.status()
        except KioskError as exc:
            log.warning("device status failed: %s", exc)
            return {name: {"state": "unknown", "detail": str(exc)[:80]} for name in self.ports}

    def cancel(self) -> None:
        """End of session, on the UI thread: reads of the session stop within one slice; ``wipe``
        then runs on a worker thread."""
        self.session += 1

    def wipe(self) -> None:
        """Wipe reader memory and drop pending scans (after ``cancel``); a new read waits for it."""
        if not self._started.is_set():
            return
        with self._io_lock:
            self._wipe()

    def _wipe(self) -> None:
        for name in ("id_reader", "card_reader"):
            if name in self.ports:
                try:
                    self.manager[name].wipe()
                except KioskError as exc:
                    log.warning("device reset failed", extra={"fields": {"device": name, "why": str(exc)[:80]}})
        if "scanner" in self.ports:
            try:
                while self.manager["scanner"].next_scan(0) is not None:
                    pass  # a code scanned for the previous resident must not reach the next one
            except KioskError:
                pass

    def close(self) -> None:
        self.cancel()
        self.wipe()
        if self._started.is_set():
            self.manager.stop()
