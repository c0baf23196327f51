"""Who runs the fleet's singleton jobs: a lease held as a PostgreSQL session advisory lock.

With several controller instances (``instance`` set, docs/scale-out.md) the jobs that must run
once for the whole fleet (liveness sweeps, command expiry and time-outs, alarm rules with time,
retention, operator actions, roll-out advancement) run only on the instance holding the lease.
The lease is ``pg_try_advisory_lock`` on a connection of its own, so it lives exactly as long as
that connection: a SIGKILLed holder's connection closes, PostgreSQL releases the lock, and the
next instance to try (every ``retry`` seconds) takes it over. The holder checks its connection
every ``renew`` seconds and gives the lease up at the first failure; TCP keepalives make
PostgreSQL notice a holder that vanished without closing its socket.

The lease decides who *tries*; it is not what keeps a job from running twice. Each job's
transaction also takes the transaction-level lock :data:`FENCE` and reads what it acts on from
the database inside it (``controller.fleet_share``), so a holder that lost its lease mid-job and
its successor are serialised and the second finds the work done.

With one controller (SQLite, or PostgreSQL without ``instance``) :class:`SoleLease` always holds.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Callable
from typing import Any

log = logging.getLogger(__name__)

LEASE_KEY = 16017  # pg_advisory_lock(bigint) key of the singleton-jobs lease
FENCE = 16018  # pg_advisory_xact_lock(bigint) key every singleton-job transaction takes


class SoleLease:
    """The one controller of its store holds the lease trivially."""

    holder = True

    def held(self, now: float) -> bool:  # noqa: ARG002 - same signature as PgLease
        return True

    def close(self) -> None:
        pass


class PgLease:
    """The singleton-jobs lease on its own PostgreSQL connection (``connect()`` makes one)."""

    def __init__(self, connect: Callable[[], Any], *, retry: float = 1.0, renew: float = 1.0) -> None:
        self._connect = connect
        self.retry = retry
        self.renew = renew
        self.conn: Any = None
        self.holder = False
        self._next = 0.0
        self.acquired = 0  # times this instance took the lease (a metric, and for the tests)

    def held(self, now: float) -> bool:
        """Whether this instance holds the lease now; tries to take or renew it when due."""
        if now < self._next:
            return self.holder
        self._next = now + (self.renew if self.holder else self.retry)
        try:
            if self.conn is None:
                self.conn = self._connect()
            if self.holder:
                self.conn.execute("SELECT 1").fetchone()
            else:
                self.holder = bool(self.conn.execute("SELECT pg_try_advisory_lock(?)", (LEASE_KEY,)).fetchone()[0])
                if self.holder:
                    self.acquired += 1
                    log.warning("this instance now runs the fleet's singleton jobs")
        except Exception as exc:  # noqa: BLE001 - any failure of the lease's connection ends the lease
            if self.holder:
                log.error("lost the singleton-jobs lease: %s", str(exc)[:200])
            self._drop()
        return self.holder

    def _drop(self) -> None:
        self.holder = False
        if self.conn is not None:
            with contextlib.suppress(Exception):  # closing a broken connection may fail too
                self.conn.close()
        self.conn = None

    def close(self) -> None:
        """Give the lease up at once (clean stop): another instance takes it at its next try."""
        self._drop()
