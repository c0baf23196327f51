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


# The controller's reconnect to the broker once it has been connected. Short on purpose: kiosks
# re-send what is unacknowledged after the agent's ACK_WAIT (10 s), so a controller that comes back
# within a few seconds of the broker saves the fleet a round of re-sends; the jitter keeps several
# instances (and a restarted broker's first seconds) from being hit in lock-step.
CONTROLLER_RECONNECT_BASE = 0.5
CONTROLLER_RECONNECT_CAP = 4.0


def controller_reconnect(rand: Callable[[], float] = random.random) -> Backoff:
    """The controller's reconnect policy: 0.5 s doubling to 4 s, full jitter."""
    return Backoff(base=CONTROLLER_RECONNECT_BASE, cap=CONTROLLER_RECONNECT_CAP, rand=rand)
