"""systemd notifications (``Type=notify`` + ``WatchdogSec``) without a dependency.

The kiosk app calls ``notify("READY=1")`` once its screen is up and ``watchdog_ping()`` from its
main loop at least every ``WatchdogSec``/2; outside systemd (no ``NOTIFY_SOCKET``) both do nothing.
"""

from __future__ import annotations

import os
import socket


def notify(state: str, *, env: dict | None = None) -> bool:
    """Send ``state`` (e.g. ``READY=1``, ``WATCHDOG=1``, ``STATUS=...``); False outside systemd."""
    addr = (env if env is not None else os.environ).get("NOTIFY_SOCKET", "")
    if not addr:
        return False
    if addr.startswith("@"):  # abstract namespace socket
        addr = "\0" + addr[1:]
    with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as s:
        s.connect(addr)
        s.sendall(state.encode())
    return True


def watchdog_interval(env: dict | None = None) -> float | None:
    """Seconds between pings (half of WatchdogSec), or None when the watchdog is off."""
    usec = (env if env is not None else os.environ).get("WATCHDOG_USEC", "")
    return int(usec) / 2e6 if usec.isdigit() and int(usec) > 0 else None


def watchdog_ping(env: dict | None = None) -> bool:
    return notify("WATCHDOG=1", env=env)
