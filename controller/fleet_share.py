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
deadlocking; a kiosk's row is never written from a stale copy. They come in two lanes: a kiosk
whose messages in the batch decide nothing (:func:`needs_exclusive`: telemetry, events no rule
reads) is locked shared, so two instances' batches of readings go side by side; any change of a
kiosk's record, alarms or commands needs its exclusive lock, and a message that turns out to
decide something under a shared lock is refused there (``handlers.Decides``) and done again with
the exclusive one. Readings written under shared locks: :func:`write_readings`. Only PostgreSQL: SQLite serves
exactly one controller, which keeps its whole fleet in memory as before.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable
from typing import Any

from contract import topics
from contract.payloads import Telemetry, merge_telemetry
from controller import alarms, handlers, lease, store, store_reads
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


def lock_kiosks(conn: Any, kiosk_ids: Iterable[str], shared: Iterable[str] = ()) -> None:
    """Take each kiosk's transaction lock, in one global order (the lock key's), until commit:
    exclusive for ``kiosk_ids``, shared for those of ``shared`` not among them (a kiosk asked for
    both, or two ids with one key, gets the exclusive lock only). One statement for all of them:
    a lock taken later, while others are held, could deadlock with another instance's set."""
    exclusive = set(kiosk_ids)
    ids = sorted(exclusive | set(shared))
    if ids:
        conn.execute("SELECT CASE WHEN x THEN pg_advisory_xact_lock(?, k) ELSE pg_advisory_xact_lock_shared(?, k) END "
                     "FROM (SELECT hashtext(id) AS k, bool_or(x) AS x FROM unnest(?::text[], ?::bool[]) AS u(id, x) "
                     "GROUP BY 1 ORDER BY 1) AS s",
                     (KIOSK_LOCKS, KIOSK_LOCKS, ids, [k in exclusive for k in ids])).fetchall()


class Locked(set):
    """The kiosks locked (and read) in the open transaction; ``shared`` those locked shared only.
    A kiosk locked shared is never locked again exclusive in the same transaction: two instances
    upgrading the same kiosk's lock would wait for each other."""

    def __init__(self) -> None:
        super().__init__()
        self.shared: set[str] = set()


def needs_exclusive(parsed: topics.Parsed | Exception | None, rules: alarms.RuleSet) -> bool:
    """Whether a message, read against any committed state, may decide something (so its kiosk is
    locked exclusive), told from the parsed message alone, before any lock: telemetry, and events
    of a type no event rule raises or clears on, decide nothing unless the kiosk's committed state
    says otherwise (unknown, stale, an alarm to raise or clear): the handler then refuses it under
    the shared lock (``handlers.Decides``) and the worker takes it again with the exclusive one.
    A message that did not parse only counts a refusal."""
    if not isinstance(parsed, topics.Parsed) or parsed.kind == "telemetry":
        return False
    return parsed.kind != "events" or getattr(parsed.model, "type", None) in rules.event_types


def begin(st: handlers.FleetState) -> Locked:
    """Start a transaction's working set: forget every kiosk, alarm and command held so far (any of
    it may be stale now). Returns the set :func:`refresh_kiosks` records the refreshed kiosks in."""
    st.kiosks, st.open_alarms, st.commands, st.held = {}, {}, {}, {}
    st.stale_watch = StaleWatch()  # the kiosks read in this transaction are watched as they come
    st.dirty.clear()
    st.fresh.clear()
    return Locked()


def refresh_kiosks(st: handlers.FleetState, conn: Any, kiosk_ids: Iterable[str],
                   sign: Callable[[dict[str, Any]], Any], fresh: set[str], shared: Iterable[str] = ()) -> None:
    """Lock the kiosks of ``kiosk_ids`` (exclusive) and ``shared`` (shared, unless also among
    ``kiosk_ids``) not yet in ``fresh`` and add their committed records, open alarms and open
    commands (``sign`` adds a command's signed wire form) to ``st``; what ``st`` already holds of
    a fresh kiosk may hold this transaction's changes and stays."""
    exclusive = set(kiosk_ids)
    if isinstance(fresh, Locked) and exclusive & fresh.shared:
        raise RuntimeError(f"kiosk locked shared asked for exclusive in one transaction: {sorted(exclusive & fresh.shared)[:3]}")
    exclusive -= fresh
    lent = set(shared) - exclusive - fresh
    ids = sorted(exclusive | lent)
    if not ids:
        return
    if not fresh:
        st.layers = store_reads.layers(conn)
    fresh.update(ids)
    if isinstance(fresh, Locked):
        fresh.shared.update(lent)
    lock_kiosks(conn, exclusive, lent)
    handlers.adopt(st, _records(conn, "SELECT * FROM kiosks WHERE kiosk_id = ANY(?::text[])", (ids,)).values())
    st.open_alarms.update(_alarms(conn, "kiosk_id = ANY(?::text[]) AND", (ids,)))
    st.held.update(store.held_rows(conn, "kiosk_id = ANY(?::text[])", (ids,)))
    st.commands.update(_commands(conn, "kiosk_id = ANY(?::text[]) AND", (ids,), sign))


def write_readings(conn: Any, records: list[dict[str, Any]], bases: dict[str, Any],
                   readings: dict[str, list[Telemetry]]) -> int:
    """Write the latest readings of ``records`` (kiosks whose only change is a reading) when
    other instances may write the same kiosks' readings at the same time (shared kiosk locks):
    the rows are locked in one order, and a kiosk whose stored reading is no longer the one this
    transaction read (``bases``: its ``ts``) has the readings it applied (``readings``) merged
    again onto the stored one, so a 1.2 delta lands on the reading it follows; one older than the
    stored reading is left out (late). ``last_seen`` and ``last_telemetry`` only move forward.
    Returns how many readings were left out."""
    ids = sorted(r["kiosk_id"] for r in records)
    if not ids:
        return 0
    rows = conn.execute("SELECT kiosk_id, (telemetry::jsonb ->> 'ts')::float8 FROM kiosks "
                        "WHERE kiosk_id = ANY(?::text[]) ORDER BY kiosk_id FOR UPDATE", (ids,)).fetchall()
    moved = [r[0] for r in rows if r[0] in bases and r[1] != bases[r[0]]]
    late = 0
    if moved:
        by_id = {r["kiosk_id"]: r for r in records}
        for kiosk_id, text in conn.execute("SELECT kiosk_id, telemetry FROM kiosks WHERE kiosk_id = ANY(?::text[])",
                                           (moved,)).fetchall():
            held: dict[str, Any] = json.loads(text)
            for model in readings.get(kiosk_id, ()):
                if model.ts is not None and isinstance(held.get("ts"), int | float) and model.ts < held["ts"]:
                    late += 1
                    continue
                held = merge_telemetry(held, model).to_dict()
            by_id[kiosk_id]["telemetry"] = held
    conn.executemany("UPDATE kiosks SET telemetry = ?, last_telemetry = GREATEST(last_telemetry, ?), "
                     "last_seen = GREATEST(last_seen, ?) WHERE kiosk_id = ?",
                     [(store.dumps(r["telemetry"]), r.get("last_telemetry", 0.0), r["last_seen"], r["kiosk_id"])
                      for r in sorted(records, key=lambda r: r["kiosk_id"])])
    return late


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
