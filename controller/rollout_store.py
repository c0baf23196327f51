"""Where roll-outs and published releases are kept: ``rollouts.sqlite3`` beside the controller's store.

Every change of a roll-out goes through :meth:`RolloutStore.mutate`: read the record and its
revision, decide (pure, :mod:`controller.rollouts`), then ``UPDATE ... WHERE rev = ?``. Only the
caller whose conditional update wins gets the effects to carry out; the others re-read and decide
again on the new state. So a wave starts exactly once however many callers ask at the same moment
(hawkBit PR #1853), across threads and processes. Each thread has its own connection.
"""

from __future__ import annotations

import json
import sqlite3
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

from foundation.errors import ConfigError, KioskError

DB_NAME = "rollouts.sqlite3"
SCHEMA = """
CREATE TABLE IF NOT EXISTS releases (
    component TEXT NOT NULL, version TEXT NOT NULL, manifest_sha256 TEXT NOT NULL, size INTEGER NOT NULL,
    files INTEGER NOT NULL, published_by TEXT NOT NULL, published_at REAL NOT NULL, expires_at REAL NOT NULL,
    PRIMARY KEY (component, version));
CREATE TABLE IF NOT EXISTS rollouts (
    id TEXT PRIMARY KEY, version TEXT NOT NULL, status TEXT NOT NULL, rev INTEGER NOT NULL,
    created_at REAL NOT NULL, body TEXT NOT NULL);
CREATE INDEX IF NOT EXISTS rollouts_status ON rollouts(status);
"""
Decide = Callable[[dict[str, Any]], tuple[dict[str, Any], list[tuple[str, str]]]]


class Conflict(KioskError):
    """The roll-out kept changing under us (should not happen outside a storm of writers)."""


class RolloutStore:
    def __init__(self, data_dir: Path) -> None:
        self.path = Path(data_dir) / DB_NAME
        Path(data_dir).mkdir(parents=True, exist_ok=True)
        self._local = threading.local()
        self.conn().executescript(SCHEMA)

    def conn(self) -> sqlite3.Connection:
        c = getattr(self._local, "conn", None)
        if c is None:
            c = sqlite3.connect(self.path, timeout=30, isolation_level=None, check_same_thread=False)
            c.execute("PRAGMA journal_mode=WAL")
            c.execute("PRAGMA synchronous=NORMAL")
            c.row_factory = sqlite3.Row
            self._local.conn = c
        return c

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
        try:
            self.conn().execute("INSERT INTO rollouts (id, version, status, rev, created_at, body) VALUES (?,?,?,0,?,?)",
                                (r["id"], r["version"], r["status"], r["created_at"], json.dumps(r)))
        except sqlite3.IntegrityError:
            raise ConfigError(f"a roll-out {r['id']!r} exists already", field="id") from None

    def get(self, rollout_id: str) -> dict[str, Any] | None:
        got = self._get(rollout_id)
        return got[0] if got else None

    def _get(self, rollout_id: str) -> tuple[dict[str, Any], int] | None:
        row = self.conn().execute("SELECT body, rev FROM rollouts WHERE id = ?", (rollout_id,)).fetchone()
        return (json.loads(row["body"]), row["rev"]) if row else None

    def list(self, status: str | None = None) -> list[dict[str, Any]]:
        q, args = "SELECT body FROM rollouts", ()
        if status:
            q, args = q + " WHERE status = ?", (status,)
        return [json.loads(r["body"]) for r in self.conn().execute(q + " ORDER BY created_at DESC", args)]

    def active_ids(self) -> list[str]:
        return [r["id"] for r in self.conn().execute(
            "SELECT id FROM rollouts WHERE status IN ('running', 'awaiting_approval', 'paused')")]

    def mutate(self, rollout_id: str, decide: Decide, attempts: int = 200) -> tuple[dict[str, Any], list]:
        """Apply one decision with optimistic concurrency; returns (record, effects won)."""
        for _ in range(attempts):
            got = self._get(rollout_id)
            if got is None:
                raise ConfigError(f"no roll-out {rollout_id!r}", field="id")
            old, rev = got
            new, effects = decide(old)
            if new == old:
                return old, []
            cur = self.conn().execute("UPDATE rollouts SET body = ?, status = ?, rev = rev + 1 WHERE id = ? AND rev = ?",
                                      (json.dumps(new), new["status"], rollout_id, rev))
            if cur.rowcount == 1:
                return new, effects
        raise Conflict(f"roll-out {rollout_id} changed {attempts} times while deciding")
