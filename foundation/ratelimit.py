"""A token bucket: at most ``rate`` units (bytes) per second on average, bursts up to ``burst``.

Pure and thread-safe; the time is passed in and the caller waits the way it can (a kiosk's
download sleeps its thread, the controller's release serving awaits ``asyncio.sleep``). A
reservation may take the bucket below zero: the next caller then waits behind it, so several
downloads sharing one bucket together stay within the rate, each getting its turn.
"""

from __future__ import annotations

import threading


class TokenBucket:
    def __init__(self, rate: float, *, now: float, burst: float | None = None) -> None:
        if rate <= 0:
            raise ValueError(f"rate must be > 0, got {rate}")
        self.rate = float(rate)
        self.capacity = float(burst if burst is not None else rate)
        self.tokens = self.capacity
        self.last = now
        self._lock = threading.Lock()

    def reserve(self, n: float, now: float) -> float:
        """Take ``n`` units; returns the seconds to wait before using them (0.0: at once)."""
        with self._lock:
            self.tokens = min(self.capacity, self.tokens + max(0.0, now - self.last) * self.rate)
            self.last = max(self.last, now)
            self.tokens -= n
            return -self.tokens / self.rate if self.tokens < 0 else 0.0
