"""When each online kiosk may next go stale: the liveness sweep's schedule, so it skips the rest.

``handlers.tick`` calls a kiosk stale once it has been silent for ``limit`` seconds (three
telemetry periods) while the controller heard the broker. Walking the whole fleet every second
for that (26,412 records at province size) cost more than the telemetry that keeps them fresh.
Here each watched kiosk has one pending entry in a heap keyed by a time *at or before* the moment
it was last heard; :meth:`StaleWatch.due` pops the entries old enough that their kiosk may be
stale now, and the sweep re-checks exactly those against the record and watches again the ones
that were heard meanwhile (one pop and one push per kiosk per ``limit``, not per message).

Why this never misses a kiosk: an entry's time is never later than when its kiosk was last
heard (a reading only moves that later, and a record adopted with an earlier one is watched again
with the earlier time), and ``now - since > limit`` holds for the entry whenever it holds for the
later time, since rounding keeps subtraction monotonic. A popped kiosk that is not online is
dropped; it is watched again when it comes online (``handlers``) or is adopted from the store.
"""

from __future__ import annotations

import heapq


class StaleWatch:
    """Kiosks to re-check for silence, by the earliest time they may have been last heard."""

    def __init__(self) -> None:
        self._heap: list[tuple[float, str]] = []
        self._pending: dict[str, float] = {}  # kiosk -> its live entry's time (others are left-overs)

    def __len__(self) -> int:
        return len(self._pending)

    def __contains__(self, kiosk_id: object) -> bool:
        return kiosk_id in self._pending

    def watch(self, kiosk_id: str, since: float) -> None:
        """Check ``kiosk_id`` once ``limit`` has passed from ``since`` (or from an earlier pending time)."""
        held = self._pending.get(kiosk_id)
        if held is not None and held <= since:
            return  # an earlier check is pending: it looks at the record as it is then
        self._pending[kiosk_id] = since
        heapq.heappush(self._heap, (since, kiosk_id))
        if len(self._heap) > 2 * len(self._pending) + 64:
            # Left-overs pile up only when records are adopted again and again with earlier times:
            # rebuild from the live entries.
            self._heap = [(t, k) for k, t in self._pending.items()]
            heapq.heapify(self._heap)

    def due(self, now: float, limit: float) -> list[str]:
        """Pop and return the kiosks whose pending time is more than ``limit`` before ``now``:
        they may have gone stale. The caller re-checks each and watches again those still live."""
        heap, pending, out = self._heap, self._pending, []
        while heap and now - heap[0][0] > limit:
            since, kiosk_id = heapq.heappop(heap)
            if pending.get(kiosk_id) == since:  # else a left-over of a since-replaced entry
                del pending[kiosk_id]
                out.append(kiosk_id)
        return out
