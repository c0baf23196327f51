"""A wall clock a test can step: simulated kiosks only (``kiosk-agent --simulated``).

A real kiosk's clock jumps when NTP corrects it after a long time offline, or when a technician
sets it by hand. The soak (``benchmarks/soak.py``) needs that jump in a running kiosk process
without touching the machine's own clock, so a simulated kiosk reads wall time through this
clock: ``time.time()`` plus the offset in seconds written in ``DATA_DIR/dev/clock-offset`` (a
plain number, ``0`` or a missing file for none). The file is looked at again at most once per
``recheck`` seconds of monotonic time, so a step shows within a second, as NTP's would. Like a
real host clock, the offset survives a restart of the kiosk process until the file changes.

Monotonic time (timeouts, backoff, keepalive) never steps, as on Linux.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from pathlib import Path

log = logging.getLogger(__name__)

OFFSET_FILE = "clock-offset"
MAX_OFFSET_S = 10 * 365 * 86400.0  # a decade either way: past that the file is not a clock step


class SteppedClock:
    def __init__(self, path: Path, *, wall: Callable[[], float] = time.time,
                 monotonic: Callable[[], float] = time.monotonic, recheck: float = 1.0) -> None:
        self.path = Path(path)
        self.wall, self.monotonic, self.recheck = wall, monotonic, recheck
        self.offset = 0.0
        self._next = float("-inf")
        self._lock = threading.Lock()

    def _read(self) -> float:
        try:
            text = self.path.read_text(encoding="ascii").strip()
        except FileNotFoundError:
            return 0.0
        except (OSError, UnicodeDecodeError) as exc:
            log.warning("clock offset file %s unreadable (%s): keeping %.1f s", self.path, exc, self.offset)
            return self.offset
        try:
            value = float(text or 0)
        except ValueError:
            log.warning("clock offset file %s holds %r, not a number of seconds: keeping %.1f s",
                        self.path, text[:40], self.offset)
            return self.offset
        if not -MAX_OFFSET_S <= value <= MAX_OFFSET_S:
            log.warning("clock offset %r s in %s is out of range: keeping %.1f s", value, self.path, self.offset)
            return self.offset
        return value

    def __call__(self) -> float:
        now = self.monotonic()
        if now >= self._next:
            with self._lock:
                if now >= self._next:
                    new = self._read()
                    if new != self.offset:
                        log.warning("wall clock stepped by %+.1f s", new - self.offset)
                    self.offset = new
                    self._next = now + self.recheck
        return self.wall() + self.offset
