"""Several controller instances, one fleet: the live state each decision needs, read from PostgreSQL.

With shared subscriptions an instance sees only its share of each kiosk's messages (the status on
one instance, the telemetry on another, the command's result on a third), so no instance's memory
holds the fleet. Before the pure handlers decide anything, the worker replaces the part of its
``FleetState`` the decision reads with what is committed in the database, inside the same
transaction and under a transaction-level advisory lock per kiosk:

* an ingest batch: :func:`refresh_kiosks` for the kiosks whose messages it holds (their records,
  open alarms and open commands) plus the desired-config layers;
* a command queued through this instance's API or by an operator action: its kiosk is locked
  with the batch's (or the jobs run's) other kiosks, in the same statement;
* the singleton jobs (``controller.lease``): :func:`refresh_for_jobs` under the jobs' fence, with
  the kiosks the liveness sweep may turn stale (the longest silent ``SWEEP_MAX`` a round) or
  whose held condition may raise its alarm (``handlers.FleetState.held``), every open command
  and every open alarm.

The locks are taken in one order (sorted by lock key, all of a transaction's in one statement
before it applies anything), so two instances' batches wait for each other instead of
deadlocking; a kiosk's row is never written from a stale copy. Only PostgreSQL: SQLite serves
exactly one controller, which keeps its whole fleet in memory as before.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable
from typing import Any

from controller import handlers, lease, store, store_reads
from controller.stale_watch import StaleWatch

KIOSK_LOCKS = 16019  # class id of pg_advisory_xact_lock(int, int): one lock per kiosk (hashtext of its id)
SWEEP_MAX = 1000  # kiosks the liveness sweep turns stale per transaction, at most
KEEPALIVES = "keepalives=1&keepalives_idle=5&keepalives_interval=2&keepalives_count=2"


def with_keepalives(url: str) -> str:
    """The database URL with TCP keepalives, so PostgreSQL notices a vanished instance in about 10 s."""
    return url + ("&" if "?" in url else "?") + KEEPALIVES


def kiosk_of(topic: str) -> str | None:
    """The kiosk id level of a kiosk topic (checked later by the parser), or None."""
    parts = topic.split("/", 3)
    return parts[2] if len(parts) >= 4 and parts[2] != "_controller" else None


def lock_kiosks(conn: Any, kiosk_ids: Iterable[str]) -> None:
    """Take each kiosk's transaction lock, in one global order (the lock key's), until commit."""
    ids = sorted(set(kiosk_ids))
    if ids:
        conn.execute("SELECT pg_advisory_xact_lock(?, k) FROM (SELECT DISTINCT hashtext(x) AS k "
                     "FROM unnest(?::text[]) AS x ORDER BY k) AS s", (KIOSK_LOCKS, ids)).fetchall()


def begin(st: handlers.FleetState) -> set[str]:
    """Start a transaction's working set: forget every kiosk, alarm and command held so far (any of
    it may be stale now). Returns the set :func:`refresh_kiosks` records the refreshed kiosks in."""
    st.kiosks, st.open_alarms, st.commands, st.held = {}, {}, {}, {}
    st.stale_watch = StaleWatch()  # the kiosks read in this transaction are watched as they come
    st.dirty.clear()
    return set()


def refresh_kiosks(st: handlers.FleetState, conn: Any, kiosk_ids: Iterable[str],
                   sign: Callable[[dict[str, Any]], Any], fresh: set[str]) -> None:
    """Lock the kiosks of ``kiosk_ids`` not yet in ``fresh`` and add their committed records, open
    alarms and open commands (``sign`` adds a command's signed wire form) to ``st``; what ``st``
    already holds of a fresh kiosk may hold this transaction's changes and stays."""
    ids = sorted(set(kiosk_ids) - fresh)
    if not ids:
        return
    if not fresh:
        st.layers = store_reads.layers(conn)
    fresh.update(ids)
    lock_kiosks(conn, ids)
    handlers.adopt(st, _records(conn, "SELECT * FROM kiosks WHERE kiosk_id = ANY(?::text[])", (ids,)).values())
    st.open_alarms.update(_alarms(conn, "kiosk_id = ANY(?::text[]) AND", (ids,)))
    st.held.update(store.held_rows(conn, "kiosk_id = ANY(?::text[])", (ids,)))
    st.commands.update(_commands(conn, "kiosk_id = ANY(?::text[]) AND", (ids,), sign))


def fence(conn: Any) -> None:
    """The singleton jobs' transaction lock: a holder that lost its lease mid-job and its successor
    run one after the other, never together. Taken first, before any kiosk's lock."""
    conn.execute("SELECT pg_advisory_xact_lock(?)", (lease.FENCE,)).fetchall()


def refresh_for_jobs(st: handlers.FleetState, conn: Any, now: float,
                     sign: Callable[[dict[str, Any]], Any], fresh: set[str], also: Iterable[str] = ()) -> None:
    """After :func:`fence`: the kiosks the liveness sweep may turn stale, those with a held
    condition (with their held conditions) and those of ``also`` (the commands the run queues),
    locked together, every open command and every open alarm, as
    committed (what this transaction changed already stays)."""
    limit = st.telemetry_period * st.stale_after_periods
    # The longest silent first, at most SWEEP_MAX a round (the tick runs every second): each
    # is a lock held to commit, and PostgreSQL's lock table is small (64 per connection by default).
    due = [r[0] for r in conn.execute("SELECT kiosk_id FROM kiosks WHERE state = 'online' AND last_seen < ? "
                                      "ORDER BY last_seen LIMIT ?", (now - limit, SWEEP_MAX))]
    # Kiosks with a held condition are locked too: the tick may raise its alarm, and must not do
    # so from a copy that a batch about to commit (the device answering again) makes stale.
    held = [r[0] for r in conn.execute("SELECT DISTINCT kiosk_id FROM held_alarms")]
    refresh_kiosks(st, conn, [*due, *held, *also], sign, fresh)
    for key, alarm in _alarms(conn, "", ()).items():
        st.open_alarms.setdefault(key, alarm)
    for cid, cmd in _commands(conn, "", (), sign).items():
        st.commands.setdefault(cid, cmd)


def _records(conn: Any, sql: str, params: tuple) -> dict[str, dict[str, Any]]:
    return {r["kiosk_id"]: store.kiosk_row(r) for r in conn.execute(sql, params)}


def _alarms(conn: Any, where: str, params: tuple) -> dict[Any, dict[str, Any]]:
    rows = conn.execute(f"SELECT * FROM alarms WHERE {where} cleared_at IS NULL", params)
    return {(r["kiosk_id"], r["rule"], r["subject"]): dict(r) for r in rows}


def _commands(conn: Any, where: str, params: tuple, sign: Callable[[dict[str, Any]], Any]) -> dict[str, dict]:
    out = {}
    for r in conn.execute(f"SELECT * FROM commands WHERE {where} status IN ('queued', 'sent')", params):
        cmd = dict(r)
        cmd["args"] = json.loads(cmd["args"])
        cmd["wire"] = sign(cmd)
        out[cmd["id"]] = cmd
    return out
