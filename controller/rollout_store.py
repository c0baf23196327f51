"""Where roll-outs and published releases are kept: ``rollouts.sqlite3`` beside the controller's store.

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
(hawkBit PR #1853), across threads and processes. Each thread has its own connection.

Roll-outs live in this SQLite file only, also when the fleet store is on PostgreSQL
(docs/scale-out.md).
"""

from __future__ import annotations

import json
import sqlite3
import threading
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

from controller import rollout_reasons as RR
from foundation.errors import ConfigError, KioskError

DB_NAME = "rollouts.sqlite3"
LAYOUT = 2  # PRAGMA user_version: 2 = one row per kiosk (1 or 0: every kiosk inside the roll-out's body)
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
_KIOSK_COLS = ("wave", "state", "reason", "from_version", "since")
_UPSERT = ("INSERT INTO rollout_kiosks (rollout_id, kiosk_id, wave, state, reason, from_version, since, updated_at)"
           " VALUES (?,?,?,?,?,?,?,?) ON CONFLICT (rollout_id, kiosk_id) DO UPDATE SET wave = excluded.wave,"
           " state = excluded.state, reason = excluded.reason, from_version = excluded.from_version,"
           " since = excluded.since, updated_at = excluded.updated_at")
Decide = Callable[[dict[str, Any]], tuple[dict[str, Any], list[tuple[str, str]]]]


class Conflict(KioskError):
    """The roll-out kept changing under us (should not happen outside a storm of writers)."""


def _kiosk_rows(rollout_id: str, kiosks: Iterable[tuple[str, dict[str, Any]]], now: float) -> list[tuple]:
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
    def __init__(self, data_dir: Path) -> None:
        self.path = Path(data_dir) / DB_NAME
        Path(data_dir).mkdir(parents=True, exist_ok=True)
        self._local = threading.local()
        self._cache: dict[str, tuple[dict[str, Any], int]] = {}  # roll-out id -> (record, rev)
        self.conn().executescript(SCHEMA)
        self._migrate()

    def conn(self) -> sqlite3.Connection:
        c = getattr(self._local, "conn", None)
        if c is None:
            c = sqlite3.connect(self.path, timeout=30, isolation_level=None, check_same_thread=False)
            c.execute("PRAGMA journal_mode=WAL")
            c.execute("PRAGMA synchronous=NORMAL")
            c.row_factory = sqlite3.Row
            self._local.conn = c
        return c

    def _migrate(self) -> None:
        """Move each roll-out's kiosks out of its body into rows (a database from before ``LAYOUT`` 2).
        One transaction: a controller and kioskctl opening the file at once migrate it once."""
        c = self.conn()
        if c.execute("PRAGMA user_version").fetchone()[0] >= LAYOUT:
            return
        c.execute("BEGIN IMMEDIATE")
        try:
            if c.execute("PRAGMA user_version").fetchone()[0] < LAYOUT:
                for row in c.execute("SELECT id, body FROM rollouts").fetchall():
                    body = json.loads(row["body"])
                    kiosks = body.pop("kiosks", None)
                    if kiosks is None:
                        continue
                    c.executemany(_UPSERT, _kiosk_rows(row["id"], kiosks.items(), body.get("updated_at", 0.0)))
                    c.execute("UPDATE rollouts SET body = ? WHERE id = ?", (json.dumps(body), row["id"]))
                c.execute(f"PRAGMA user_version = {LAYOUT}")
            c.execute("COMMIT")
        except BaseException:
            c.execute("ROLLBACK")
            raise

    # -- what the running controller tells kioskctl (the releases URL it serves) ----------------------
    def set_setting(self, name: str, value: str) -> None:
        self.conn().execute("INSERT INTO rollout_settings (name, value) VALUES (?, ?) ON CONFLICT (name)"
                            " DO UPDATE SET value = excluded.value", (name, value))

    def setting(self, name: str) -> str:
        row = self.conn().execute("SELECT value FROM rollout_settings WHERE name = ?", (name,)).fetchone()
        return row[0] if row else ""

    # -- releases ---------------------------------------------------------------------------------
    def add_release(self, rec: dict[str, Any]) -> None:
        try:
            self.conn().execute(
                "INSERT INTO releases (component, version, manifest_sha256, size, files, published_by, published_at,"
                " expires_at) VALUES (:component, :version, :manifest_sha256, :size, :files, :published_by,"
                " :published_at, :expires_at)", rec)
        except sqlite3.IntegrityError:
            raise ConfigError(f"{rec['component']} release {rec['version']} is already published "
                              "(a published release never changes: build a new version)", field="version") from None

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
            c.executemany(_UPSERT, _kiosk_rows(r["id"], r["kiosks"].items(), r["updated_at"]))
            c.execute("COMMIT")
        except sqlite3.IntegrityError:
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
        c.execute("BEGIN")  # one snapshot: the body, its revision and the kiosk rows agree
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
        row = self.conn().execute("SELECT coalesce(sum(json_extract(body, '$.wave') + 1), 0) FROM rollouts"
                                  " WHERE json_extract(body, '$.wave_count') > 0").fetchone()
        return int(row[0])

    def mutate(self, rollout_id: str, decide: Decide, attempts: int = 200) -> tuple[dict[str, Any], list]:
        """Apply one decision with optimistic concurrency; returns (record, effects won)."""
        c = self.conn()
        for _ in range(attempts):
            got = self._get(rollout_id)
            if got is None:
                raise ConfigError(f"no roll-out {rollout_id!r}", field="id")
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
                    c.executemany(_UPSERT, _kiosk_rows(rollout_id, changed, new.get("updated_at", 0.0)))
                c.execute("COMMIT")
            except BaseException:
                c.execute("ROLLBACK")
                raise
            if cur.rowcount == 1:
                self._cache[rollout_id] = (new, rev + 1)
                return new, effects
        raise Conflict(f"roll-out {rollout_id} changed {attempts} times while deciding")
