"""Staff at a community centre's window call the next queue ticket; recent measured waits.

``call_next(conn, site, now=..., called_by=...)`` marks the next waiting ticket of today (a counter's lowest number) at a
site (each ticket records the site of the kiosk that issued it, from the fleet registry) as called and stores ``called_at``; the wait of a
ticket is ``called_at - issued_at``. Calls are safe under concurrency (one ``BEGIN IMMEDIATE``
transaction on SQLite, the site's queue lock on PostgreSQL: two windows never get the same
ticket, whichever console or controller instance they use) and idempotent per ``request_ref`` (a
double-clicked button or a retried API call returns the ticket it called the first time).
"""

from __future__ import annotations

from statistics import median
from typing import Any

from controller.service_backend.operations import COUNTER_PREFIX, ServiceError, _local, lock_queue

RECENT_SECONDS = 2 * 3600  # waits older than this no longer describe the queue now
MIN_SAMPLES = 3  # fewer measured waits say little; the per-ticket estimate is used instead
MAX_REF = 100


class QueueEmpty(ServiceError):
    def __init__(self, message: str) -> None:
        super().__init__("queue_empty", message)


class UnknownSite(ServiceError):
    def __init__(self, message: str) -> None:
        super().__init__("unknown_site", message)


def _ticket(row: Any, site: str, repeated: bool = False) -> dict[str, Any]:
    tid, number, counter, kiosk_id, issued_at, called_at, called_by = tuple(row)
    return {"id": tid, "number": number, "counter": counter, "kiosk_id": kiosk_id, "site": site,
            "issued_at": issued_at, "called_at": called_at, "called_by": called_by,
            "wait_minutes": round(max(0.0, called_at - issued_at) / 60, 1), "repeated": repeated}


# The lowest waiting number of the queue (site, day, counter) of the ticket row ``queue``.
HEAD = ("SELECT MIN(h.seq) FROM svc_tickets h WHERE h.site={queue}.site AND h.day={queue}.day "
        "AND h.counter={queue}.counter AND h.status='waiting'")
_COLS = "t.id, t.number, t.counter, t.kiosk_id, t.issued_at, t.called_at, t.called_by"


def _check(site: str, counter: str | None, request_ref: str | None) -> None:
    if not isinstance(site, str) or not site.strip() or len(site) > 64:
        raise ServiceError("bad_request", "site must be a non-empty string of at most 64 characters")
    if counter is not None and counter not in COUNTER_PREFIX:
        raise ServiceError("bad_request", f"counter must be one of {', '.join(COUNTER_PREFIX)}, got {counter!r}")
    if request_ref is not None and (not isinstance(request_ref, str) or not 0 < len(request_ref) <= MAX_REF):
        raise ServiceError("bad_request", f"request id must be a string of 1-{MAX_REF} characters")


def call_next(conn: Any, site: str, *, now: float, called_by: str, counter: str | None = None,
              request_ref: str | None = None) -> dict[str, Any]:
    """Call the next waiting ticket of today at ``site``: the lowest number of ``counter``, or of
    the counter whose next ticket was issued first.

    ``conn`` must be in autocommit mode (SQLite's ``isolation_level=None``, or a PostgreSQL
    connection of ``controller.fleet_db``): the transaction is explicit.
    Raises :class:`QueueEmpty`, :class:`UnknownSite` or ``ServiceError("bad_request")``.
    """
    _check(site, counter, request_ref)
    conn.execute("BEGIN IMMEDIATE")  # take the write lock before reading: no two windows get one ticket
    try:
        lock_queue(conn, site)
        if request_ref is not None:
            row = conn.execute(f"SELECT {_COLS} FROM svc_tickets t WHERE t.call_ref=?", (request_ref,)).fetchone()
            if row is not None:
                conn.execute("COMMIT")
                return _ticket(row, site, repeated=True)
        if conn.execute("SELECT 1 FROM kiosks WHERE site=? LIMIT 1", (site,)).fetchone() is None:
            raise UnknownSite(f"no kiosk is registered at site {site!r}")
        called = call_in_transaction(conn, site, now=now, called_by=called_by, counter=counter,
                                     request_ref=request_ref)
        conn.execute("COMMIT")
    except BaseException:
        conn.execute("ROLLBACK")
        raise
    return called


def call_in_transaction(conn: Any, site: str, *, now: float, called_by: str,
                        counter: str | None = None, request_ref: str | None = None) -> dict[str, Any]:
    """The call itself, inside the caller's write transaction (the console's ``call_next`` or a
    staff terminal's ``queue_ticket.call`` request)."""
    day = _local(conn, now).strftime("%Y-%m-%d")
    # A counter's queue goes by number: with several instances a ticket can carry an issue time a
    # few milliseconds before the number ahead of it (its instance read the clock, then waited for
    # the queue lock). Among the counters, the head issued first goes first.
    sql = (f"SELECT t.id FROM svc_tickets t WHERE t.site=? AND t.day=? AND t.status='waiting' AND t.seq = "
           f"({HEAD.format(queue='t')})")
    args: list[Any] = [site, day]
    if counter:
        sql, args = sql + " AND t.counter=?", [*args, counter]
    row = conn.execute(sql + " ORDER BY t.issued_at, t.id LIMIT 1", args).fetchone()
    if row is None:
        which = f" at counter {counter}" if counter else ""
        raise QueueEmpty(f"no ticket is waiting at site {site!r}{which} today")
    conn.execute("UPDATE svc_tickets SET status='called', called_at=?, called_by=?, call_ref=? "
                 "WHERE id=? AND status='waiting'", (now, called_by, request_ref, row[0]))
    return _ticket(conn.execute(f"SELECT {_COLS} FROM svc_tickets t WHERE t.id=?", (row[0],)).fetchone(), site)


def site_queue(conn: Any, site: str, *, now: float, recent: int = 10) -> dict[str, Any]:
    """Today's queue at a site: waiting count per counter, the next numbers, the last calls."""
    _check(site, None, None)
    day = _local(conn, now).strftime("%Y-%m-%d")
    join = "FROM svc_tickets t WHERE t.site=? AND t.day=?"
    waiting = {c: {"counter": c, "waiting": 0, "next": None} for c in COUNTER_PREFIX}
    for counter, n in conn.execute(
            f"SELECT t.counter, COUNT(*) {join} AND t.status='waiting' GROUP BY t.counter", (site, day)).fetchall():
        nxt = conn.execute(f"SELECT t.number {join} AND t.status='waiting' AND t.counter=? "
                           "ORDER BY t.seq LIMIT 1", (site, day, counter)).fetchone()
        waiting[counter] = {"counter": counter, "waiting": n, "next": nxt[0] if nxt else None}
    called = [_ticket(r, site) for r in conn.execute(
        f"SELECT {_COLS} {join} AND t.called_at IS NOT NULL ORDER BY t.called_at DESC LIMIT ?", (site, day, recent))]
    return {"site": site, "day": day, "counters": list(waiting.values()), "called": called}


def recent_median_wait(conn: Any, counter: str, site: str, now: float) -> float | None:
    """Median wait in minutes of the tickets of ``counter`` called at ``site`` in the last two hours,
    or None with too few."""
    waits = [max(0.0, r[0]) for r in conn.execute(
        "SELECT called_at - issued_at FROM svc_tickets WHERE site=? AND counter=? AND called_at >= ?",
        (site, counter, now - RECENT_SECONDS))]
    if len(waits) < MIN_SAMPLES:
        return None
    return median(waits) / 60
