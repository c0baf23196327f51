"""Barcode/QR scanner driver: decoded, de-bounced scans delivered to a callback and a queue."""

from __future__ import annotations

import logging
import queue
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from device_drivers import profiles
from device_drivers.scanner_codec import Debouncer, Scan, ScanError, ScannerDecoder
from device_drivers.serial_link import SerialLink
from foundation.backoff import Backoff
from foundation.errors import ConfigError, DeviceError

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class ScannerProfile:
    name: str
    suffix: str
    aim_prefix: bool
    max_length: int
    debounce_s: float
    trigger_on: bytes
    trigger_off: bytes

    @classmethod
    def load(cls, name_or_path: str | Path) -> ScannerProfile:
        d = profiles.load("scanner", name_or_path)
        try:
            return cls(d["name"], d["suffix"], bool(d["aim_prefix"]), int(d["max_length"]), float(d["debounce_s"]),
                       bytes.fromhex(d.get("trigger_on", "")), bytes.fromhex(d.get("trigger_off", "")))
        except KeyError as exc:
            raise ConfigError("missing in scanner profile", field=str(exc.args[0]), path=str(name_or_path)) from None
        except ValueError as exc:
            raise ConfigError(f"bad value: {exc}", field="trigger_on/trigger_off", path=str(name_or_path)) from None


class BarcodeScanner:
    def __init__(
        self,
        url: str,
        baudrate: int = 9600,
        *,
        profile: str | ScannerProfile = "generic",
        on_scan: Callable[[Scan], None] | None = None,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
        backoff: Backoff | None = None,
    ) -> None:
        self.profile = profile if isinstance(profile, ScannerProfile) else ScannerProfile.load(profile)
        self.url = url
        self.on_scan = on_scan
        self.clock = clock
        self.scans: queue.Queue[Scan] = queue.Queue(maxsize=100)
        self.counters = {"scans": 0, "repeats_dropped": 0, "bad_scans": 0, "communication_errors": 0}
        p = self.profile
        self._decoder = ScannerDecoder(suffix=p.suffix, aim_prefix=p.aim_prefix, max_length=p.max_length)
        self._debounce = Debouncer(p.debounce_s)
        self.link = SerialLink(url, baudrate, self._on_data, backoff=backoff, sleep=sleep, clock=clock)

    def close(self) -> None:
        self.link.close()

    def _on_data(self, data: bytes) -> None:
        for ev in self._decoder.feed(data):
            if isinstance(ev, ScanError):
                self.counters["bad_scans"] += 1
                log.warning("bad scan", extra={"fields": {"reason": ev.reason, "length": ev.length}})
                continue
            if not self._debounce.accept(ev.data, self.clock()):
                self.counters["repeats_dropped"] += 1
                continue
            self.counters["scans"] += 1
            # Scan data can be personal (a health code): log its length and type only.
            log.info("scan", extra={"fields": {"symbology": ev.symbology, "length": len(ev.data)}})
            try:
                self.scans.put_nowait(ev)
            except queue.Full:
                self.scans.get_nowait()  # nobody is reading: keep the newest
                self.scans.put_nowait(ev)
            if self.on_scan:
                self.on_scan(ev)

    def next_scan(self, timeout: float) -> Scan | None:
        """The next scan, or None when nothing was scanned within ``timeout`` s."""
        try:
            return self.scans.get(timeout=timeout)
        except queue.Empty:
            return None

    def trigger(self, on: bool = True) -> None:
        """Start/stop a host-triggered read (profile data; not every model has it)."""
        cmd = self.profile.trigger_on if on else self.profile.trigger_off
        if not cmd:
            raise DeviceError(f"scanner profile {self.profile.name} has no host trigger")
        self.link.write(cmd)
