"""The one transport seam: every driver opens its port here, through ``serial.serial_for_url``.

A device path (``/dev/serial/by-id/...``), ``loop://``, ``socket://host:port`` and the simulators'
pseudo-terminals all work unchanged.
"""

from __future__ import annotations

import logging
import os

import serial

from foundation.errors import TransportError

log = logging.getLogger(__name__)


def open_port(url: str, baudrate: int = 115200, *, timeout: float | None = 0.1, **kwargs) -> serial.SerialBase:
    """Open ``url`` or raise :class:`TransportError` naming the port and what to check."""
    if not url:
        raise TransportError("no port configured for this device")
    try:
        port = serial.serial_for_url(url, baudrate=baudrate, timeout=timeout, **kwargs)
    except (serial.SerialException, OSError, ValueError) as exc:
        raise TransportError(f"cannot open {url}: {exc} (check the cable and the port path)") from None
    log.debug("opened port", extra={"fields": {"url": url, "baud": baudrate}})
    return port


def wire_time(nbytes: int, baudrate: int) -> float:
    """Seconds that ``nbytes`` take on an 8N1 line: 10 bit times per byte."""
    return nbytes * 10 / baudrate


BY_ID = "/dev/serial/by-id"


def find_by_id(fragment: str, root: str = BY_ID) -> str:
    """The stable ``/dev/serial/by-id/...`` path whose name contains ``fragment`` (for example a
    USB serial number), for configuration tools. Exactly one match is required: two adapters of
    the same model must be told apart by a longer fragment, not by enumeration order."""
    try:
        names = sorted(os.listdir(root))
    except OSError:
        raise TransportError(f"no serial devices: {root} does not exist (is the adapter plugged in?)") from None
    hits = [n for n in names if fragment in n]
    if len(hits) != 1:
        found = ", ".join(names) or "none"
        raise TransportError(f"{len(hits)} ports in {root} match {fragment!r} (present: {found})")
    return os.path.join(root, hits[0])
