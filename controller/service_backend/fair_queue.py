"""Fair scheduling of residents' service calls: one queue per kiosk, served round-robin.

One kiosk (a captured one, or one in a loop) sending thousands of ``svc/request`` must not
delay another kiosk's answer past its timeout. Each kiosk gets its own bounded queue; the
service thread takes one request from each waiting kiosk in turn, so another kiosk's request
waits for at most one request per busy kiosk. A request beyond a kiosk's bound is refused at
once (the controller drops it, counts ``svc_refused:busy`` and acknowledges it), never queued
without limit.
"""

from __future__ import annotations

import threading
from collections import deque
from collections.abc import Hashable
from typing import Any

PER_KIOSK = 32  # a kiosk's own waiting requests; a resident's session makes one at a time


class FairQueue:
    def __init__(self, per_key: int = PER_KIOSK) -> None:
        self.per_key = per_key
        self._queues: dict[Hashable, deque] = {}
        self._turns: deque[Hashable] = deque()  # keys with waiting items, in serving order
        self._cond = threading.Condition()

    def put(self, key: Hashable, item: Any) -> bool:
        """Queue ``item`` for ``key``; False (nothing queued) when that key already has ``per_key`` waiting."""
        with self._cond:
            q = self._queues.get(key)
            if q is None:
                q = self._queues[key] = deque()
                self._turns.append(key)
            elif len(q) >= self.per_key:
                return False
            q.append(item)
            self._cond.notify()
            return True

    def get(self, timeout: float) -> Any | None:
        """The next item, taking keys in turn; None if nothing arrived within ``timeout``."""
        with self._cond:
            if not self._cond.wait_for(lambda: bool(self._turns), timeout):
                return None
            key = self._turns.popleft()
            q = self._queues[key]
            item = q.popleft()
            if q:
                self._turns.append(key)
            else:
                del self._queues[key]
            return item

    def __len__(self) -> int:
        with self._cond:
            return sum(len(q) for q in self._queues.values())
