"""Live updates: a poller thread keeps the fleet view fresh and fans changes out to browsers over SSE."""

from __future__ import annotations

import asyncio
import logging
import threading
from collections.abc import Callable
from typing import Any

from controller.web.fleetview import FleetView, dumps

log = logging.getLogger(__name__)

MAX_QUEUE = 1000  # a browser that falls this far behind gets a "reload" event instead


class Hub:
    """Subscribers are asyncio queues on the server's loop; publishing is safe from any thread."""

    def __init__(self) -> None:
        self._subs: set[tuple[asyncio.AbstractEventLoop, asyncio.Queue]] = set()
        self._lock = threading.Lock()
        self.published = 0

    def subscribe(self) -> asyncio.Queue:
        q: asyncio.Queue = asyncio.Queue(MAX_QUEUE + 1)
        with self._lock:
            self._subs.add((asyncio.get_running_loop(), q))
        return q

    def unsubscribe(self, q: asyncio.Queue) -> None:
        with self._lock:
            self._subs = {s for s in self._subs if s[1] is not q}

    @property
    def subscribers(self) -> int:
        return len(self._subs)

    def publish(self, event: str, data: Any) -> None:
        frame = f"event: {event}\ndata: {dumps(data)}\n\n"
        self.published += 1
        with self._lock:
            subs = list(self._subs)
        for loop, q in subs:
            loop.call_soon_threadsafe(_offer, q, frame)


    def close(self) -> None:
        """End every stream (server shutdown), so uvicorn's graceful stop is not kept waiting."""
        with self._lock:
            subs = list(self._subs)
        for loop, q in subs:
            loop.call_soon_threadsafe(_end, q)


def _end(q: asyncio.Queue) -> None:
    while q.full():
        q.get_nowait()
    q.put_nowait(None)


def _offer(q: asyncio.Queue, frame: str) -> None:
    if q.qsize() >= MAX_QUEUE:
        while not q.empty():
            q.get_nowait()
        q.put_nowait("event: reload\ndata: {}\n\n")
    else:
        q.put_nowait(frame)


class Poller:
    """Polls the store for kiosk changes and the backend for alarm changes, publishing both."""

    def __init__(self, fleet: FleetView, hub: Hub, *, alarms: Callable[[], list[dict[str, Any]]] | None = None,
                 interval: float = 0.25, full_every: float = 120.0,
                 monotonic: Callable[[], float] | None = None) -> None:
        import time

        self.fleet = fleet
        self.hub = hub
        self.alarms = alarms
        self.interval = interval
        self.full_every = full_every
        self.monotonic = monotonic or time.monotonic
        self._stop = threading.Event()
        self._alarm_ids: set[Any] | None = None
        self.errors = 0
        fleet.listeners.append(self._on_changed)

    def _on_changed(self, rows: list[dict[str, Any]], added: list[dict[str, Any]]) -> None:
        for row in rows[:200]:
            self.hub.publish("kiosk", row)
        if added:
            # Browsers update the rows they show from "kiosk"; a new kiosk has no row anywhere yet, and
            # where it belongs depends on each page's filters, sort and page: the page decides.
            self.hub.publish("added", {"count": len(added), "items": added[:200]})
        self.hub.publish("summary", self.fleet.counts())

    def poll_alarms(self) -> None:
        if self.alarms is None:
            return
        active = self.alarms()
        ids = {a["id"] for a in active}
        if self._alarm_ids is not None and ids != self._alarm_ids:
            self.hub.publish("alarms", {"active": len(active),
                                        "raised": [a for a in active if a["id"] not in self._alarm_ids][:50],
                                        "cleared": sorted(self._alarm_ids - ids, key=str)[:50]})
        self._alarm_ids = ids

    def step(self, full: bool = False) -> None:
        if full:
            self.fleet.refresh_all()
        else:
            self.fleet.refresh_changed()
        self.poll_alarms()

    def run(self) -> None:
        next_full = self.monotonic() + self.full_every
        while not self._stop.wait(self.interval):
            full = self.monotonic() >= next_full
            if full:
                next_full = self.monotonic() + self.full_every
            try:
                self.step(full)
            except Exception:  # the store may be busy or mid-migration: try again next round
                self.errors += 1
                log.exception("console poll failed")

    def start(self) -> None:
        self.step(full=True)
        self._thread = threading.Thread(target=self.run, name="console-poller", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if hasattr(self, "_thread"):
            self._thread.join(5)
