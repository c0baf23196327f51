"""Capped, jittered exponential backoff ("full jitter"), with randomness injected for tests."""

from __future__ import annotations

import random
from collections.abc import Callable
from dataclasses import dataclass, field


@dataclass
class Backoff:
    base: float = 0.5
    cap: float = 30.0
    rand: Callable[[], float] = field(default=random.random)
    attempt: int = 0

    def next_delay(self) -> float:
        """Return the delay before the next attempt and count the attempt."""
        ceiling = min(self.cap, self.base * (2 ** self.attempt))
        self.attempt += 1
        # Never below a tenth of the ceiling, so a reconnect storm cannot spin at 0 s.
        return ceiling * (0.1 + 0.9 * self.rand())

    def reset(self) -> None:
        self.attempt = 0
