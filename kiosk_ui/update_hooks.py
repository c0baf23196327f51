"""What the running kiosk tells its updater: health signals for the window after a switch, and
the update lock held by resident sessions, prints and card reads (kiosk_ui/updater/).

Both are found from the environment kiosk.service gives the app: ``KIOSK_HEALTH_DIR`` (default
``/run/kiosk/health``), ``KIOSK_UPDATE_LOCKS`` (default ``/opt/kiosk/locks``) and the release this
process runs (``KIOSK_RELEASE``, else the name of ``releases/<version>`` holding its venv). A
process that does not run from a release (a developer checkout, the demo) reports nothing. A lock
folder the kiosk cannot write is logged once and then ignored: a resident is never refused a
service because the updater's folder is missing.
"""

from __future__ import annotations

import contextlib
import logging
import os
import sys
import threading
import time
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path

from kiosk_ui.updater import health, locks

log = logging.getLogger(__name__)

# How long each activity may hold the update lock before the updater calls it hung ("locked").
LIMITS = {"session": 900.0, "print": 120.0, "card_read": 120.0}


def running_release(env: Mapping[str, str] = os.environ, prefix: str = sys.prefix) -> str:
    """The release version this process runs, or "" outside a release folder."""
    if env.get("KIOSK_RELEASE"):
        return env["KIOSK_RELEASE"]
    venv = Path(prefix)
    return venv.parent.name if venv.name == "venv" and venv.parent.parent.name == "releases" else ""


class HealthSignals:
    """Reports each health signal once per process, for the release this process runs."""

    def __init__(self, health_dir: str | os.PathLike | None, version: str,
                 clock: Callable[[], float] = time.time) -> None:
        self.health_dir, self.version, self.clock = health_dir, version, clock
        self.sent: set[str] = set()
        self._lock = threading.Lock()

    def report(self, signal: str) -> None:
        if not self.version or self.health_dir is None:
            return
        with self._lock:
            if signal in self.sent:
                return
            try:
                health.report(signal, self.version, self.health_dir, now=self.clock())
            except OSError as exc:
                log.warning("health signal %s not written: %s", signal, exc)
                return
            self.sent.add(signal)
        log.info("health signal", extra={"fields": {"signal": signal, "release": self.version}})


class ActivityLocks:
    """The update lock of each activity: ``with hold("print")`` or ``session(True/False)``."""

    def __init__(self, lock_dir: str | os.PathLike | None, limits: Mapping[str, float] = LIMITS,
                 clock: Callable[[], float] = time.time) -> None:
        self.lock_dir, self.limits, self.clock = lock_dir, dict(limits), clock
        self._session_fd: int | None = None
        self._warned = False

    def _acquire(self, activity: str) -> int | None:
        if self.lock_dir is None:
            return None
        try:
            return locks.acquire(self.lock_dir, activity, self.limits[activity], now=self.clock())
        except OSError as exc:
            if not self._warned:
                self._warned = True
                log.warning("update lock folder %s not usable: %s", self.lock_dir, exc)
            return None

    @contextlib.contextmanager
    def hold(self, activity: str) -> Iterator[None]:
        fd = self._acquire(activity)
        try:
            yield
        finally:
            if fd is not None:
                locks.release(fd)

    def session(self, active: bool) -> None:
        """Called on every UI sync: hold the session lock exactly while a resident is served."""
        if active and self._session_fd is None:
            self._session_fd = self._acquire("session")
            if self._session_fd is None:
                return
        elif not active and self._session_fd is not None:
            locks.release(self._session_fd)
            self._session_fd = None


def from_environment(env: Mapping[str, str] = os.environ) -> tuple[HealthSignals, ActivityLocks]:
    version = running_release(env)
    health_dir = env.get("KIOSK_HEALTH_DIR", "/run/kiosk/health")
    lock_dir = env.get("KIOSK_UPDATE_LOCKS", "/opt/kiosk/locks") if version else env.get("KIOSK_UPDATE_LOCKS")
    return HealthSignals(health_dir, version), ActivityLocks(lock_dir)
