"""Where roll-outs and published releases are kept: tables in the fleet database.

The fleet database is the controller's (``controller.fleet_db.FleetDb``): its SQLite store file
in ``data_dir``, or PostgreSQL when its ``database`` setting names one, so with several
controller instances every instance's console, API and kioskctl see the same roll-outs. On
PostgreSQL the tables have their own migration track (``controller.pg_parts``, part
``rollouts``). Roll-outs an older controller kept in ``rollouts.sqlite3`` are moved in when the
store opens (``controller.rollout_adopt``).

A roll-out is one ``rollouts`` row (its options, status, wave, reason and revision ``rev``) and one
``rollout_kiosks`` row per kiosk (wave, state, reason, the release it ran when planned, times), so a
kiosk's ``update/state`` rewrites one small row, not a record of the whole fleet. A reason is a code
and params (:mod:`controller.rollout_reasons`; JSON in the kiosk rows); a sentence an older
controller stored is read back through :func:`controller.rollout_reasons.normalize`.

Every change of a roll-out goes through :meth:`RolloutStore.mutate`: read the record and its
revision in one snapshot, decide (pure, :mod:`controller.rollouts`), then in one transaction
``UPDATE rollouts ... WHERE rev = ?`` and write the kiosk rows that changed. Only the caller whose
conditional update wins gets the effects to carry out; the others roll back, re-read and decide
again on the new state. So a wave starts exactly once however many callers ask at the same moment
(hawkBit PR #1853), across threads, processes and controller instances (PostgreSQL re-checks
``rev`` after a concurrent update commits). Each thread has its own connection.
"""

from __future__ import annotations

import contextlib
import json
import sqlite3
import threading
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

from controller import pg_parts, release_share, sql_dialect, store
from controller import rollout_reasons as RR
from controller.fleet_db import FleetDb
from foundation.errors import ConfigError, KioskError

# The tables on SQLite, in the fleet store's file (PostgreSQL: ``pg_parts.PARTS["rollouts"]``).
SCHEMA = """
CREATE TABLE IF NOT EXISTS releases (
    component TEXT NOT NULL, version TEXT NOT NULL, manifest_sha256 TEXT NOT NULL, size INTEGER NOT NULL,
    files INTEGER NOT NULL, published_by TEXT NOT NULL, published_at REAL NOT NULL, expires_at REAL NOT NULL,
    PRIMARY KEY (component, version));
CREATE TABLE IF NOT EXISTS rollouts (
    id TEXT PRIMARY KEY, version TEXT NOT NULL, status TEXT NOT NULL, rev INTEGER NOT NULL,
    created_at REAL NOT NULL, body TEXT NOT NULL);
CREATE INDEX IF NOT EXISTS rollouts_status ON rollouts(status);
CREATE TABLE IF NOT EXISTS rollout_kiosks (
    rollout_id TEXT NOT NULL, kiosk_id TEXT NOT NULL, wave INTEGER NOT NULL, state TEXT NOT NULL,
    reason TEXT NOT NULL, from_version TEXT NOT NULL, since REAL NOT NULL, updated_at REAL NOT NULL,
    PRIMARY KEY (rollout_id, kiosk_id));
CREATE TABLE IF NOT EXISTS rollout_settings (name TEXT PRIMARY KEY, value TEXT NOT NULL);
"""
_RELEASE_COLS = ("component", "version", "manifest_sha256", "size", "files", "published_by", "published_at",
                 "expires_at")
_KIOSK_COLS = ("wave", "state", "reason", "from_version", "since")
UPSERT = ("INSERT INTO rollout_kiosks (rollout_id, kiosk_id, wave, state, reason, from_version, since, updated_at)"
           " VALUES (?,?,?,?,?,?,?,?) ON CONFLICT (rollout_id, kiosk_id) DO UPDATE SET wave = excluded.wave,"
           " state = excluded.state, reason = excluded.reason, from_version = excluded.from_version,"
           " since = excluded.since, updated_at = excluded.updated_at")
Decide = Callable[[dict[str, Any]], tuple[dict[str, Any], list[tuple[str, str]]]]


class Conflict(KioskError):
    """The roll-out kept changing under us (should not happen outside a storm of writers)."""


def kiosk_rows(rollout_id: str, kiosks: Iterable[tuple[str, dict[str, Any]]], now: float) -> list[tuple]:
    return [(rollout_id, kid, k["wave"], k["state"], json.dumps(k["reason"]) if k["reason"] else "",
             k.get("from_version", ""), k["since"], now) for kid, k in kiosks]


def _reason(text: str, kiosk_state: str = "") -> RR.Reason:
    """A kiosk row's reason column: JSON of the reason, or a sentence an older controller wrote."""
    if text.startswith("{"):
        try:
            return RR.normalize(json.loads(text), kiosk_state)
        except ValueError:
            pass
    return RR.normalize(text, kiosk_state)


class RolloutStore:
    """The roll-out tables of the fleet database ``where`` (a ``FleetDb``, or a data folder: its
    SQLite store)."""

    def __init__(self, where: FleetDb | Path | str) -> None:
        self.db = FleetDb.of(where)
        self.data_dir = self.db.data_dir
        self.data_dir.mkdir(parents=True, exist_ok=True)
        self._local = threading.local()
        self._opened: list[Any] = []
        self._lock = threading.Lock()
        self._cache: dict[str, tuple[dict[str, Any], int]] = {}  # roll-out id -> (record, rev)
        c = self.conn()
        if self.db.on_postgresql:
            pg_parts.migrate(c, "rollouts")
        else:
            c.executescript(SCHEMA)
        from controller import rollout_adopt  # it writes through this store's tables

        rollout_adopt.adopt(self)

    @property
    def on_postgresql(self) -> bool:
        return self.db.on_postgresql

    def conn(self) -> Any:
        c = getattr(self._local, "conn", None)
        if c is None:
            if self.db.on_postgresql:
                c = self.db.connect()
            else:
                c = sqlite3.connect(self.data_dir / store.DB_NAME, timeout=30, isolation_level=None,
                                    check_same_thread=False)
                c.execute("PRAGMA journal_mode=WAL")
                c.execute("PRAGMA synchronous=NORMAL")
                c.row_factory = sqlite3.Row
            self._local.conn = c
            with self._lock:
                self._opened.append(c)
        return c

    def close(self) -> None:
        """Close every connection this store opened (any thread's)."""
        with self._lock:
            opened, self._opened = self._opened, []
        for c in opened:
            c.close()
        self._local = threading.local()

    def reopen(self) -> None:
        """Drop this thread's connection (PostgreSQL restarted, network lost): the next use opens a new one."""
        c = getattr(self._local, "conn", None)
        self._local.conn = None
        if c is not None:
            with self._lock:
                if c in self._opened:
                    self._opened.remove(c)
            with contextlib.suppress(Exception):  # closing a broken connection may fail too
                c.close()

    def _snapshot(self) -> str:
        """The statement that starts a read of one consistent state (PostgreSQL's default,
        READ COMMITTED, gives each statement its own)."""
        return "BEGIN ISOLATION LEVEL REPEATABLE READ" if self.db.on_postgresql else "BEGIN"

    # -- what the running controller tells kioskctl (the releases URL it serves) ----------------------
    def set_setting(self, name: str, value: str) -> None:
        self.conn().execute("INSERT INTO rollout_settings (name, value) VALUES (?, ?) ON CONFLICT (name)"
                            " DO UPDATE SET value = excluded.value", (name, value))

    def setting(self, name: str) -> str:
        row = self.conn().execute("SELECT value FROM rollout_settings WHERE name = ?", (name,)).fetchone()
        return row[0] if row else ""

    # -- releases ---------------------------------------------------------------------------------
    def add_release(self, rec: dict[str, Any], manifest: bytes | None = None) -> None:
        """Register a published release; on PostgreSQL its ``manifest`` bytes go into the fleet
        database in the same transaction (``controller.release_share``), so every instance that
        sees the release can serve it."""
        c = self.conn()
        c.execute("BEGIN IMMEDIATE")
        try:
            c.execute(f"INSERT INTO releases ({', '.join(_RELEASE_COLS)}) VALUES ({', '.join('?' * len(_RELEASE_COLS))})",
                      tuple(rec[k] for k in _RELEASE_COLS))
            if manifest is not None and self.on_postgresql:
                release_share.put_manifest(c, rec["component"], rec["version"], manifest)
            c.execute("COMMIT")
        except sql_dialect.integrity_errors():
            c.execute("ROLLBACK")
            raise ConfigError(f"{rec['component']} release {rec['version']} is already published "
                              "(a published release never changes: build a new version)", field="version") from None
        except BaseException:
            c.execute("ROLLBACK")
            raise

    def release(self, version: str, component: str = "kiosk") -> dict[str, Any] | None:
        row = self.conn().execute("SELECT * FROM releases WHERE component = ? AND version = ?",
                                  (component, version)).fetchone()
        return dict(row) if row else None

    def releases(self) -> list[dict[str, Any]]:
        return [dict(r) for r in self.conn().execute("SELECT * FROM releases ORDER BY published_at DESC")]

    # -- roll-outs --------------------------------------------------------------------------------
    def create(self, r: dict[str, Any]) -> None:
        c = self.conn()
        body = {k: v for k, v in r.items() if k != "kiosks"}
        c.execute("BEGIN IMMEDIATE")
        try:
            c.execute("INSERT INTO rollouts (id, version, status, rev, created_at, body) VALUES (?,?,?,0,?,?)",
                      (r["id"], r["version"], r["status"], r["created_at"], json.dumps(body)))
            c.executemany(UPSERT, kiosk_rows(r["id"], r["kiosks"].items(), r["updated_at"]))
            c.execute("COMMIT")
        except sql_dialect.integrity_errors():
            c.execute("ROLLBACK")
            raise ConfigError(f"a roll-out {r['id']!r} exists already", field="id") from None
        except BaseException:
            c.execute("ROLLBACK")
            raise

    def get(self, rollout_id: str) -> dict[str, Any] | None:
        got = self._get(rollout_id)
        return {**got[0], "kiosks": {kid: dict(k) for kid, k in got[0]["kiosks"].items()}} if got else None

    def _kiosks(self, rollout_id: str) -> dict[str, dict[str, Any]]:
        return {row["kiosk_id"]: {**{k: row[k] for k in _KIOSK_COLS}, "reason": _reason(row["reason"], row["state"])}
                for row in self.conn().execute(
            "SELECT kiosk_id, wave, state, reason, from_version, since FROM rollout_kiosks WHERE rollout_id = ?",
            (rollout_id,))}

    def _get(self, rollout_id: str) -> tuple[dict[str, Any], int] | None:
        """The record and its revision. The last one this process read or wrote is kept: when the
        revision in the database is still its own, the kiosk rows are not read again (a kiosk's
        update/state then costs one small read and one row written, not the whole roll-out).
        Callers must not change what this returns (the decisions copy before they change)."""
        c = self.conn()
        c.execute(self._snapshot())  # one snapshot: the body, its revision and the kiosk rows agree
        try:
            row = c.execute("SELECT body, rev FROM rollouts WHERE id = ?", (rollout_id,)).fetchone()
            if row is None:
                return None
            hit = self._cache.get(rollout_id)
            if hit is not None and hit[1] == row["rev"]:
                return hit
            body = json.loads(row["body"])
            got = ({**body, "reason": RR.normalize(body.get("reason")), "kiosks": self._kiosks(rollout_id)}, row["rev"])
        finally:
            c.execute("COMMIT")
        self._cache[rollout_id] = got
        return got

    def list(self, status: str | None = None) -> list[dict[str, Any]]:
        q, args = "SELECT id FROM rollouts", ()
        if status:
            q, args = q + " WHERE status = ?", (status,)
        ids = [r["id"] for r in self.conn().execute(q + " ORDER BY created_at DESC", args)]
        return [r for r in map(self.get, ids) if r is not None]

    def active_ids(self) -> list[str]:
        return [r["id"] for r in self.conn().execute(
            "SELECT id FROM rollouts WHERE status IN ('running', 'awaiting_approval', 'paused')")]

    def revisions(self) -> dict[str, int]:
        """Each roll-out's revision: what changed since a caller last looked (the console's live view)."""
        return {r[0]: r[1] for r in self.conn().execute("SELECT id, rev FROM rollouts")}

    def kiosk_states(self) -> list[tuple[str, str, int]]:
        """``(roll-out status, kiosk update state, kiosks)``: every roll-out's kiosks, each counted once."""
        return [tuple(r) for r in self.conn().execute(
            "SELECT r.status, k.state, count(*) FROM rollout_kiosks k JOIN rollouts r ON r.id = k.rollout_id"
            " GROUP BY r.status, k.state ORDER BY 1, 2")]

    def open_waves(self) -> list[tuple[str, int, str, int]]:
        """``(roll-out, wave, kiosk state, kiosks)`` of the roll-outs not finished yet."""
        return [tuple(r) for r in self.conn().execute(
            "SELECT k.rollout_id, k.wave, k.state, count(*) FROM rollout_kiosks k JOIN rollouts r ON r.id = k.rollout_id"
            " WHERE r.status IN ('running', 'awaiting_approval', 'paused') GROUP BY 1, 2, 3 ORDER BY 1, 2, 3")]

    def status_counts(self) -> dict[str, int]:
        return {r[0]: r[1] for r in self.conn().execute("SELECT status, count(*) FROM rollouts GROUP BY status")}

    def waves_started(self) -> int:
        """Waves started by every roll-out so far (the canary counts; a roll-out with no kiosk none)."""
        bodies = (json.loads(row[0]) for row in self.conn().execute("SELECT body FROM rollouts"))
        return sum(int(b.get("wave", 0)) + 1 for b in bodies if b.get("wave_count", 0) > 0)

    def mutate(self, rollout_id: str, decide: Decide, attempts: int = 200) -> tuple[dict[str, Any], list]:
        """Apply one decision with optimistic concurrency; returns (record, effects won)."""
        c = self.conn()
        for _ in range(attempts):
            got = self._get(rollout_id)
            if got is None:
                raise RR.Refused("no_rollout", f"no roll-out {rollout_id!r}", field="id")
            old, rev = got
            new, effects = decide(old)
            if new == old:
                return old, []
            body = {k: v for k, v in new.items() if k != "kiosks"}
            changed = [(kid, k) for kid, k in new["kiosks"].items() if old["kiosks"].get(kid) != k]
            c.execute("BEGIN IMMEDIATE")
            try:
                cur = c.execute("UPDATE rollouts SET body = ?, status = ?, rev = rev + 1 WHERE id = ? AND rev = ?",
                                (json.dumps(body), new["status"], rollout_id, rev))
                if cur.rowcount == 1:
                    c.executemany(UPSERT, kiosk_rows(rollout_id, changed, new.get("updated_at", 0.0)))
                c.execute("COMMIT")
            except BaseException:
                c.execute("ROLLBACK")
                raise
            if cur.rowcount == 1:
                self._cache[rollout_id] = (new, rev + 1)
                return new, effects
        raise Conflict(f"roll-out {rollout_id} changed {attempts} times while deciding")
