"""The controller's counters (``received``, ``rejected``, ``events_new``, ...): in memory for
``/metrics`` and ``stats()``, and added to the store's ``counters`` rows in the worker's
transactions.

Counted from several threads (the worker, the MQTT thread, the service thread) under one lock.
What the worker counts inside a transaction (:meth:`Tally.open`) is pending until that
transaction ends (:meth:`Tally.settle`): kept if it committed, forgotten if it rolled back, so a
batch done again (a lost race with another instance, a message deferred to its kiosk's exclusive
lock) is counted once. The counts the other threads made meanwhile, taken into the transaction's
write (:meth:`Tally.write`), are written again with the next one if it rolled back.
"""

from __future__ import annotations

import threading
from collections.abc import Callable


class Tally:
    def __init__(self, initial: dict[str, int]) -> None:
        self.counts: dict[str, int] = dict(initial)
        self.lock = threading.Lock()  # readers of ``counts`` hold it too
        self.unsaved: dict[str, int] = {}  # counted, not yet written to the store
        self._pending: dict[str, int] | None = None  # the open transaction's, on its thread
        self._owner: threading.Thread | None = None
        self._taken: dict[str, int] = {}  # ``unsaved`` taken into the open transaction's write

    def add(self, name: str, n: int = 1) -> None:
        pending = self._pending
        if pending is not None and threading.current_thread() is self._owner:
            pending[name] = pending.get(name, 0) + n
            return
        with self.lock:
            self.counts[name] = self.counts.get(name, 0) + n
            self.unsaved[name] = self.unsaved.get(name, 0) + n

    def names(self, prefix: str) -> set[str]:
        """The names counted so far that start with ``prefix``, the open transaction's included when
        asked from its thread (a cap on distinct names must see those too). Call with ``lock`` held."""
        found = {k for k in self.counts if k.startswith(prefix)}
        if self._pending is not None and threading.current_thread() is self._owner:
            found.update(k for k in self._pending if k.startswith(prefix))
        return found

    def open(self) -> None:
        """A transaction begins on this thread: its counts are pending until :meth:`settle`."""
        self._pending, self._owner = {}, threading.current_thread()

    def write(self, bump: Callable[[dict[str, int]], None]) -> None:
        """Add what is not yet stored, and the open transaction's counts, through ``bump`` (the
        store's ``bump_counters``), in the names' order: every instance's transactions update the
        same rows, and two must not lock them crosswise."""
        with self.lock:
            unsaved, self.unsaved = self.unsaved, {}
        for name, n in unsaved.items():
            self._taken[name] = self._taken.get(name, 0) + n
        for name, n in (self._pending or {}).items():
            unsaved[name] = unsaved.get(name, 0) + n
        if unsaved:
            bump(dict(sorted(unsaved.items())))

    def settle(self, committed: bool) -> None:
        """The transaction ended: keep its counts (committed) or forget them; if it rolled back,
        what it took of the others' counts is written with the next one."""
        pending, self._pending = self._pending or {}, None
        taken, self._taken = self._taken, {}
        with self.lock:
            target = self.counts if committed else self.unsaved
            for name, n in (pending if committed else taken).items():
                target[name] = target.get(name, 0) + n
