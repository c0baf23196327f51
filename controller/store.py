"""The controller's store: SQLite in WAL mode (the embedded default) or PostgreSQL, with numbered
schema migrations for each (PostgreSQL's in ``controller.store_pg``).

The write methods below are written once in SQL both accept; ``Store(data_dir, database=URL)``
picks the backend (``postgresql://...``, else the SQLite file in ``data_dir``).

One writer (the controller's worker thread, through ``Store`` under its lock); readers open
their own connections (``connect(..., readonly=True)``, see ``controller.store_reads``). Operator
actions from other processes (``kioskctl``) are rows in the ``actions`` table that the
controller picks up, so nothing but the controller writes fleet state.
"""

from __future__ import annotations

import json
import sqlite3
import threading
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from controller import audit_log, sql_dialect, store_pg
from controller.effects import EventReceived, HistorySample
from foundation.errors import KioskError

DB_NAME = "controller.sqlite3"
# PostgreSQL: a session's staging table for a batch of events (``Store.insert_events``), the
# events table's columns in its order, emptied by the statement that moves its rows on.
_EVENTS_STAGING = ("CREATE TEMP TABLE IF NOT EXISTS events_in (id TEXT, kiosk_id TEXT, boot_id TEXT, seq BIGINT, "
                   "ts DOUBLE PRECISION, type TEXT, body TEXT, received_at DOUBLE PRECISION)")

# Each entry migrates the schema from version i to i+1; never edit a released entry.
MIGRATIONS: list[str] = [
    """
    CREATE TABLE kiosks (
        kiosk_id TEXT PRIMARY KEY,
        site TEXT NOT NULL DEFAULT '',
        state TEXT NOT NULL,
        reason TEXT NOT NULL DEFAULT '',
        mode TEXT NOT NULL DEFAULT '',
        boot_id TEXT NOT NULL DEFAULT '',
        versions TEXT NOT NULL DEFAULT '{}',
        devices TEXT NOT NULL DEFAULT '{}',
        last_seen REAL NOT NULL,
        state_since REAL NOT NULL
    );
    CREATE INDEX kiosks_state ON kiosks(state);
    CREATE INDEX kiosks_site ON kiosks(site);
    """,
    """
    ALTER TABLE kiosks ADD COLUMN telemetry TEXT NOT NULL DEFAULT '{}';
    ALTER TABLE kiosks ADD COLUMN last_telemetry REAL NOT NULL DEFAULT 0;
    ALTER TABLE kiosks ADD COLUMN reported TEXT NOT NULL DEFAULT '{}';
    CREATE TABLE sites (site TEXT PRIMARY KEY, name TEXT NOT NULL DEFAULT '', region TEXT NOT NULL DEFAULT '');
    CREATE TABLE kiosk_groups (group_name TEXT NOT NULL, kiosk_id TEXT NOT NULL,
                               PRIMARY KEY (group_name, kiosk_id));
    CREATE INDEX kiosk_groups_kiosk ON kiosk_groups(kiosk_id);
    CREATE TABLE devices (
        kiosk_id TEXT NOT NULL, name TEXT NOT NULL, state TEXT NOT NULL, detail TEXT NOT NULL DEFAULT '',
        required_action TEXT NOT NULL DEFAULT '', body TEXT NOT NULL DEFAULT '{}', updated_at REAL NOT NULL,
        PRIMARY KEY (kiosk_id, name)
    );
    CREATE TABLE telemetry_history (
        kiosk_id TEXT NOT NULL, ts REAL NOT NULL, cpu REAL, memory REAL, disk REAL, temperature REAL,
        queue_depth INTEGER, body TEXT NOT NULL, PRIMARY KEY (kiosk_id, ts)
    );
    CREATE INDEX telemetry_history_ts ON telemetry_history(ts);
    CREATE TABLE events (
        id TEXT PRIMARY KEY, kiosk_id TEXT NOT NULL, boot_id TEXT NOT NULL DEFAULT '', seq INTEGER NOT NULL,
        ts REAL, type TEXT NOT NULL, body TEXT NOT NULL, received_at REAL NOT NULL
    );
    CREATE INDEX events_kiosk ON events(kiosk_id, received_at);
    CREATE INDEX events_received ON events(received_at);
    CREATE TABLE alarms (
        id INTEGER PRIMARY KEY, kiosk_id TEXT NOT NULL, rule TEXT NOT NULL, subject TEXT NOT NULL DEFAULT '',
        severity TEXT NOT NULL, message TEXT NOT NULL, raised_at REAL NOT NULL, cleared_at REAL,
        acked_by TEXT, acked_at REAL
    );
    CREATE INDEX alarms_open ON alarms(cleared_at);
    CREATE INDEX alarms_kiosk ON alarms(kiosk_id);
    CREATE TABLE config_layers (
        scope TEXT PRIMARY KEY, version INTEGER NOT NULL, body TEXT NOT NULL, updated_at REAL NOT NULL,
        updated_by TEXT NOT NULL
    );
    CREATE TABLE commands (
        id TEXT PRIMARY KEY, kiosk_id TEXT NOT NULL, name TEXT NOT NULL, args TEXT NOT NULL, issuer TEXT NOT NULL,
        issued_at REAL NOT NULL, expires_at REAL NOT NULL, timeout REAL NOT NULL, status TEXT NOT NULL,
        sent_at REAL, finished_at REAL, result TEXT, error TEXT NOT NULL DEFAULT ''
    );
    CREATE INDEX commands_status ON commands(status);
    CREATE INDEX commands_kiosk ON commands(kiosk_id, issued_at);
    CREATE TABLE audit (
        id INTEGER PRIMARY KEY, ts REAL NOT NULL, user TEXT NOT NULL, action TEXT NOT NULL,
        target TEXT NOT NULL, detail TEXT NOT NULL DEFAULT '{}', result TEXT NOT NULL
    );
    CREATE TABLE actions (
        id INTEGER PRIMARY KEY, ts REAL NOT NULL, user TEXT NOT NULL, kind TEXT NOT NULL, payload TEXT NOT NULL,
        status TEXT NOT NULL DEFAULT 'pending', result TEXT, done_at REAL
    );
    CREATE INDEX actions_pending ON actions(status);
    CREATE TABLE counters (name TEXT PRIMARY KEY, value INTEGER NOT NULL);
    """,
    # Alarm parameters (JSON of plain values): with the rule id, what the console translates.
    """
    ALTER TABLE alarms ADD COLUMN params TEXT NOT NULL DEFAULT '{}';
    """,
    # The connection stamp of the newest birth applied: a late status of an older connection is
    # ignored by whichever controller instance handles it.
    """
    ALTER TABLE kiosks ADD COLUMN status_stamp INTEGER;
    """,
    # The contract version the kiosk's latest applied birth announced ("1.3"; '' before any):
    # what it may be sent, read by every controller instance from here (not from its memory).
    """
    ALTER TABLE kiosks ADD COLUMN contract TEXT NOT NULL DEFAULT '';
    """,
    # Held conditions of rules with a hold (`for`): true since `since`, raised once held long enough.
    """
    CREATE TABLE held_alarms (
        kiosk_id TEXT NOT NULL, rule TEXT NOT NULL, subject TEXT NOT NULL DEFAULT '', since REAL NOT NULL,
        severity TEXT NOT NULL, message TEXT NOT NULL, params TEXT NOT NULL DEFAULT '{}',
        PRIMARY KEY (kiosk_id, rule, subject)
    );
    """,
]


class StoreError(KioskError):
    """The controller's database cannot be opened or is from a newer release."""


def connect(data_dir: Path, *, readonly: bool = False, autocommit: bool = True) -> sqlite3.Connection:
    """Open the store. ``autocommit`` (the controller's own use): transactions are explicit
    (``Store.tx``); with ``autocommit=False`` Python's ``with conn:`` transactions work as usual."""
    path = Path(data_dir) / DB_NAME
    if readonly:
        if not path.exists():
            raise StoreError(f"no controller database at {path} (is --data-dir right?)")
        conn = sqlite3.connect(f"file:{path}?mode=ro", uri=True, timeout=10, check_same_thread=False)
    else:
        Path(data_dir).mkdir(parents=True, exist_ok=True)
        # Autocommit mode: transactions are explicit (``Store.tx``) so a burst is one commit.
        conn = sqlite3.connect(path, timeout=10, check_same_thread=False,
                               isolation_level=None if autocommit else "DEFERRED")
        conn.execute("PRAGMA journal_mode=WAL")
        conn.execute("PRAGMA synchronous=NORMAL")
    conn.row_factory = sqlite3.Row
    return conn


def migrate(conn: sqlite3.Connection) -> int:
    """Bring the schema to the newest version; refuse a database from a newer release."""
    version = conn.execute("PRAGMA user_version").fetchone()[0]
    if version > len(MIGRATIONS):
        raise StoreError(f"database schema {version} is newer than this controller ({len(MIGRATIONS)})")
    for i in range(version, len(MIGRATIONS)):
        # One script per step, schema change and version bump in the same transaction.
        conn.executescript(f"BEGIN;\n{MIGRATIONS[i]}\nPRAGMA user_version = {i + 1};\nCOMMIT;")
    return len(MIGRATIONS)


class Store:
    def __init__(self, data_dir: Path, database: str | None = None) -> None:
        self.conn: Any
        # What the backend raises when it refuses a row (the worker drops and counts that row).
        self.refusals: tuple[type[Exception], ...] = (sqlite3.Error,)
        if database and store_pg.SCHEME.match(database):
            self.conn = store_pg.PgConnection(database, reconnect=True)
            self.refusals = store_pg.refusals()
            store_pg.migrate(self.conn)
        elif database:
            raise StoreError(f"--database must be a postgresql:// URL (or left out for SQLite), got {database[:40]!r}")
        else:
            self.conn = connect(data_dir)
            migrate(self.conn)
        self.lock = threading.Lock()

    def close(self) -> None:
        self.conn.close()

    def upsert_kiosks(self, records: Iterable[dict[str, Any]]) -> None:
        rows = [
            (
                r["kiosk_id"], r.get("site", ""), r["state"], r.get("reason", ""), r.get("mode", ""),
                r.get("boot_id", ""), dumps(r.get("versions", {})), dumps(r.get("devices", {})),
                r["last_seen"], r["state_since"], dumps(r.get("telemetry", {})), r.get("last_telemetry", 0.0),
                dumps(r.get("reported", {})), r.get("status_stamp"), r.get("contract", ""),
            )
            for r in records
        ]
        if not rows:
            return
        self.conn.executemany(
            """INSERT INTO kiosks (kiosk_id, site, state, reason, mode, boot_id, versions, devices, last_seen,
                   state_since, telemetry, last_telemetry, reported, status_stamp, contract)
               VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?,?)
               ON CONFLICT(kiosk_id) DO UPDATE SET site=excluded.site, state=excluded.state,
               reason=excluded.reason, mode=excluded.mode, boot_id=excluded.boot_id,
               versions=excluded.versions, devices=excluded.devices, last_seen=excluded.last_seen,
               state_since=excluded.state_since, telemetry=excluded.telemetry,
               last_telemetry=excluded.last_telemetry, reported=excluded.reported,
               status_stamp=excluded.status_stamp, contract=excluded.contract""",
            rows,
        )

    def update_readings(self, records: Iterable[dict[str, Any]]) -> None:
        """Only the latest telemetry of kiosks whose record changed in nothing else (one narrow
        row update each, no index touched, instead of rewriting the whole record)."""
        rows = [(dumps(r.get("telemetry", {})), r.get("last_telemetry", 0.0), r["last_seen"], r["kiosk_id"])
                for r in records]
        if rows:
            self.conn.executemany("UPDATE kiosks SET telemetry=?, last_telemetry=?, last_seen=? WHERE kiosk_id=?",
                                  rows)

    def load_kiosks(self) -> list[dict[str, Any]]:
        return list_kiosks(self.conn)

    # -- writes used by the controller's worker; call inside ``with store.tx():`` ----------------
    def tx(self) -> Transaction:
        """Lock plus transaction: ``with store.tx(): ...`` commits on success, rolls back on error."""
        return Transaction(self)

    @contextmanager
    def savepoint(self) -> Iterator[None]:
        """Inside a transaction: the block's writes are rolled back alone if it raises (re-raised)."""
        self.conn.execute("SAVEPOINT effect")
        try:
            yield
        except BaseException:
            self.conn.execute("ROLLBACK TO effect")
            self.conn.execute("RELEASE effect")
            raise
        self.conn.execute("RELEASE effect")

    def kiosk_record(self, kiosk_id: str) -> dict[str, Any] | None:
        """The kiosk's record as last stored, or None."""
        row = self.conn.execute("SELECT * FROM kiosks WHERE kiosk_id=?", (kiosk_id,)).fetchone()
        return None if row is None else kiosk_row(row)

    def begin(self) -> Transaction:
        """A transaction begun now (raises if the database stays locked): ``with`` it to commit or
        roll back. Lets a caller tell "could not start" (nothing applied) from "failed inside"."""
        return Transaction(self).begin()

    def record_events(self, events: Sequence[EventReceived]) -> int:
        """Store kiosk events, skipping ids already stored; return how many were new."""
        return self.insert_events([(e.event.id, e.kiosk_id, e.event.boot_id, e.event.seq, e.event.ts, e.event.type,
                                    e.text or json.dumps(e.event.raw, ensure_ascii=False), e.received_at)
                                   for e in events])

    def record_history(self, samples: Sequence[HistorySample]) -> None:
        self.insert_history([(s.kiosk_id, s.at, _number(s.telemetry.get("cpu")), _number(s.telemetry.get("memory")),
                              _number(s.telemetry.get("disk")), _number(s.telemetry.get("temperature")),
                              _number(s.telemetry.get("queue_depth")), json.dumps(s.telemetry, ensure_ascii=False))
                             for s in samples])

    def upsert_device(self, kiosk_id: str, name: str, body: dict[str, Any], now: float) -> None:
        self.conn.execute(
            """INSERT INTO devices VALUES (?,?,?,?,?,?,?) ON CONFLICT(kiosk_id, name) DO UPDATE SET
               state=excluded.state, detail=excluded.detail, required_action=excluded.required_action,
               body=excluded.body, updated_at=excluded.updated_at""",
            # Columns hold words (the fault and the action id; "" for none), the body the full status.
            (kiosk_id, name, str(body.get("state", "unknown")), str(body.get("fault") or ""),
             str(body.get("required_action") or ""), dumps(body), now),
        )

    def insert_events(self, rows: list[tuple[str, str, str, int, Any, str, str, float]]) -> int:
        """Insert events, ignoring ids already stored; return how many were new."""
        if not rows:
            return 0
        if sql_dialect.name(self.conn) == sql_dialect.POSTGRESQL:
            # COPY cannot skip the ids already stored (a kiosk sends an unacknowledged event
            # again): the batch is copied into this session's staging table and moved on by one
            # INSERT that skips them. The worker's CPU per event is what bounds ingest.
            self.conn.execute(_EVENTS_STAGING)
            self.conn.copy_in("events_in", rows)
            return self.conn.execute("WITH moved AS (DELETE FROM events_in RETURNING *) "
                                     "INSERT INTO events SELECT * FROM moved ON CONFLICT (id) DO NOTHING").rowcount
        cur = self.conn.executemany("INSERT INTO events VALUES (?,?,?,?,?,?,?,?) ON CONFLICT (id) DO NOTHING", rows)
        return cur.rowcount

    def insert_history(self, rows: list[tuple]) -> None:
        if rows:
            self.conn.executemany(
                """INSERT INTO telemetry_history VALUES (?,?,?,?,?,?,?,?) ON CONFLICT (kiosk_id, ts) DO UPDATE SET
                   cpu=excluded.cpu, memory=excluded.memory, disk=excluded.disk, temperature=excluded.temperature,
                   queue_depth=excluded.queue_depth, body=excluded.body""", rows)

    def prune(self, *, history_before: float, events_before: float) -> None:
        self.conn.execute("DELETE FROM telemetry_history WHERE ts < ?", (history_before,))
        self.conn.execute("DELETE FROM events WHERE received_at < ?", (events_before,))

    def hold_alarm(self, kiosk_id: str, rule: str, subject: str, severity: str, message: str, since: float,
                   params: dict[str, Any] | None = None) -> None:
        """Remember a held condition; one already held keeps its (earlier) start."""
        self.conn.execute(
            "INSERT INTO held_alarms (kiosk_id, rule, subject, since, severity, message, params) "
            "VALUES (?,?,?,?,?,?,?) ON CONFLICT (kiosk_id, rule, subject) DO NOTHING",
            (kiosk_id, rule, subject, since, severity, message, dumps(params or {})))

    def release_alarm(self, kiosk_id: str, rule: str, subject: str) -> None:
        self.conn.execute("DELETE FROM held_alarms WHERE kiosk_id=? AND rule=? AND subject=?", (kiosk_id, rule, subject))

    def held_alarms(self) -> dict[tuple[str, str, str], dict[str, Any]]:
        """Every held condition, by alarm key."""
        return held_rows(self.conn, "", ())

    def raise_alarm(self, kiosk_id: str, rule: str, subject: str, severity: str, message: str, now: float,
                    params: dict[str, Any] | None = None) -> int:
        self.release_alarm(kiosk_id, rule, subject)
        row = self.conn.execute(
            "INSERT INTO alarms (kiosk_id, rule, subject, severity, message, raised_at, params) VALUES (?,?,?,?,?,?,?) "
            "RETURNING id", (kiosk_id, rule, subject, severity, message, now, dumps(params or {}))).fetchone()
        return int(row[0])

    def clear_alarm(self, alarm_id: int, now: float) -> None:
        self.conn.execute("UPDATE alarms SET cleared_at=? WHERE id=? AND cleared_at IS NULL", (now, alarm_id))

    def clear_alarms(self, kiosk_id: str, rule: str, subject: str, now: float) -> None:
        """Clear every open alarm of this kiosk, rule and subject."""
        self.conn.execute("UPDATE alarms SET cleared_at=? WHERE kiosk_id=? AND rule=? AND subject=? "
                          "AND cleared_at IS NULL", (now, kiosk_id, rule, subject))

    def alarm_exists(self, alarm_id: int) -> bool:
        return self.conn.execute("SELECT 1 FROM alarms WHERE id=?", (alarm_id,)).fetchone() is not None

    def ack_alarm(self, alarm_id: int, user: str, now: float) -> bool:
        cur = self.conn.execute("UPDATE alarms SET acked_by=?, acked_at=? WHERE id=? AND acked_at IS NULL",
                                (user, now, alarm_id))
        return cur.rowcount == 1

    def open_alarms(self) -> list[dict[str, Any]]:
        return [dict(r) for r in self.conn.execute("SELECT * FROM alarms WHERE cleared_at IS NULL")]

    def set_layer(self, scope: str, body: dict[str, Any], user: str, now: float) -> int:
        version = int(self.conn.execute("SELECT COALESCE(MAX(version), 0) FROM config_layers").fetchone()[0]) + 1
        self.conn.execute("INSERT INTO config_layers VALUES (?,?,?,?,?) ON CONFLICT (scope) DO UPDATE SET "
                          "version=excluded.version, body=excluded.body, updated_at=excluded.updated_at, "
                          "updated_by=excluded.updated_by", (scope, version, dumps(body), now, user))
        return version

    def insert_command(self, c: dict[str, Any]) -> None:
        self.conn.execute(
            """INSERT INTO commands (id, kiosk_id, name, args, issuer, issued_at, expires_at, timeout, status)
               VALUES (?,?,?,?,?,?,?,?,?)""",
            (c["id"], c["kiosk_id"], c["name"], dumps(c["args"]), c["issuer"], c["issued_at"], c["expires_at"],
             c["timeout"], c["status"]))

    def update_command(self, command_id: str, **fields: Any) -> None:
        if "result" in fields and not isinstance(fields["result"], str | None):
            fields["result"] = dumps(fields["result"])
        sets = ", ".join(f"{k}=?" for k in fields)
        self.conn.execute(f"UPDATE commands SET {sets} WHERE id=?", (*fields.values(), command_id))

    def command_exists(self, command_id: str) -> bool:
        return self.conn.execute("SELECT 1 FROM commands WHERE id=?", (command_id,)).fetchone() is not None

    def finish_command(self, command_id: str, status: str, finished_at: float, error: str, result: Any) -> None:
        """Record a command's final status and audit it as the issuing operator's (the operator's
        action ends with the kiosk's answer)."""
        self.update_command(command_id, status=status, finished_at=finished_at, error=error, result=result)
        row = self.conn.execute("SELECT issuer, kiosk_id, name FROM commands WHERE id=?", (command_id,)).fetchone()
        if row is not None:
            self.audit(row[0], "command.result", f"kiosk:{row[1]}", {"id": command_id, "name": row[2]},
                       status, finished_at)

    def open_commands(self) -> list[dict[str, Any]]:
        rows = self.conn.execute("SELECT * FROM commands WHERE status IN ('queued', 'sent')")
        return [{**dict(r), "args": json.loads(r["args"])} for r in rows]

    def audit(self, user: str, action: str, target: str, detail: dict[str, Any], result: str, now: float) -> None:
        audit_log.write(self.conn, user=user, action=action, target=target, detail=detail, result=result, now=now)

    def pending_actions(self, limit: int = 100) -> list[dict[str, Any]]:
        rows = self.conn.execute("SELECT * FROM actions WHERE status='pending' ORDER BY id LIMIT ?", (limit,))
        return [dict(r) for r in rows]

    def finish_action(self, action_id: int, status: str, result: Any, now: float) -> None:
        self.conn.execute("UPDATE actions SET status=?, result=?, done_at=? WHERE id=?",
                          (status, dumps(result), now, action_id))

    def bump_counters(self, counts: dict[str, int]) -> None:
        self.conn.executemany(
            "INSERT INTO counters VALUES (?, ?) ON CONFLICT (name) DO UPDATE SET value = counters.value + excluded.value",
            list(counts.items()))

    def set_groups(self, group: str, kiosk_ids: list[str], add: bool) -> None:
        if add:
            self.conn.executemany("INSERT INTO kiosk_groups VALUES (?,?) ON CONFLICT DO NOTHING",
                                  [(group, k) for k in kiosk_ids])
        else:
            self.conn.executemany("DELETE FROM kiosk_groups WHERE group_name=? AND kiosk_id=?",
                                  [(group, k) for k in kiosk_ids])

    def set_site(self, site: str, name: str, region: str) -> None:
        self.conn.execute("INSERT INTO sites VALUES (?,?,?) ON CONFLICT (site) DO UPDATE SET name=excluded.name, "
                          "region=excluded.region", (site, name, region))


class Transaction:
    """The store's lock plus one SQLite write transaction; ``with`` commits or rolls back."""

    def __init__(self, store: Store) -> None:
        self.store = store
        self._begun = False

    def begin(self) -> Transaction:
        self.store.lock.acquire()
        # IMMEDIATE: take the write lock now. A deferred transaction that reads first (pending
        # actions) cannot upgrade once kioskctl has written meanwhile, and fails as "locked".
        try:
            self.store.conn.execute("BEGIN IMMEDIATE")
        except Exception:
            self.store.lock.release()
            raise
        self._begun = True
        return self

    def __enter__(self) -> Store:
        if not self._begun:
            self.begin()
        return self.store

    def __exit__(self, exc_type, exc, tb) -> None:
        self._begun = False
        try:
            if exc_type is None:
                self.store.conn.execute("COMMIT")
            else:
                self.store.conn.execute("ROLLBACK")
        finally:
            self.store.lock.release()


def _number(v: Any) -> float | None:
    return float(v) if isinstance(v, int | float) and not isinstance(v, bool) else None


# One encoder for every row: ``json.dumps`` with options builds a new one per call, which cost
# the bulk telemetry writes (one per reading) more than the encoding itself.
_ENCODER = json.JSONEncoder(ensure_ascii=False, separators=(",", ":"))


def dumps(value: Any) -> str:
    """A JSON column's text as the store writes it (compact, UTF-8 kept); ``fleet_share`` too."""
    return _ENCODER.encode(value)


def enqueue_action(conn: Any, user: str, kind: str, payload: dict[str, Any], now: float) -> int:
    """Queue an operator action for the controller (used by ``kioskctl`` from another process);
    committed when this returns, on either backend."""
    row = conn.execute('INSERT INTO actions (ts, "user", kind, payload) VALUES (?,?,?,?) RETURNING id',
                       (now, user, kind, dumps(payload))).fetchone()
    if getattr(conn, "in_transaction", False):  # a sqlite3 connection not in autocommit mode
        conn.commit()
    return int(row[0])


def list_kiosks(conn: sqlite3.Connection) -> list[dict[str, Any]]:
    return [kiosk_row(row) for row in conn.execute("SELECT * FROM kiosks ORDER BY kiosk_id")]


def held_rows(conn: Any, where: str, params: tuple) -> dict[tuple[str, str, str], dict[str, Any]]:
    """Held conditions (``where``: a condition on ``held_alarms`` or empty), by alarm key."""
    rows = conn.execute(f"SELECT * FROM held_alarms {'WHERE ' + where if where else ''}", params)
    return {(r["kiosk_id"], r["rule"], r["subject"]): {**dict(r), "params": json.loads(r["params"])} for r in rows}


def kiosk_row(row: sqlite3.Row) -> dict[str, Any]:
    rec = dict(row)
    for key in ("versions", "devices", "telemetry", "reported"):
        if key in rec:
            rec[key] = json.loads(rec[key])
    return rec
