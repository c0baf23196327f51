"""The controller's embedded store: SQLite in WAL mode with numbered schema migrations."""

from __future__ import annotations

import json
import sqlite3
import threading
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from provisioning.errors import KioskError

DB_NAME = "controller.sqlite3"

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
]


class StoreError(KioskError):
    """The controller's database cannot be opened or is from a newer release."""


def connect(data_dir: Path, *, readonly: bool = False) -> sqlite3.Connection:
    path = Path(data_dir) / DB_NAME
    if readonly:
        if not path.exists():
            raise StoreError(f"no controller database at {path} (is --data-dir right?)")
        conn = sqlite3.connect(f"file:{path}?mode=ro", uri=True, timeout=10, check_same_thread=False)
    else:
        Path(data_dir).mkdir(parents=True, exist_ok=True)
        conn = sqlite3.connect(path, timeout=10, check_same_thread=False)
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
        with conn:
            conn.executescript(MIGRATIONS[i])
            conn.execute(f"PRAGMA user_version = {i + 1}")
    return len(MIGRATIONS)


class Store:
    def __init__(self, data_dir: Path) -> None:
        self.conn = connect(data_dir)
        migrate(self.conn)
        self.lock = threading.Lock()

    def close(self) -> None:
        self.conn.close()

    def upsert_kiosks(self, records: Iterable[dict[str, Any]]) -> None:
        rows = [
            (
                r["kiosk_id"], r.get("site", ""), r["state"], r.get("reason", ""), r.get("mode", ""),
                r.get("boot_id", ""), json.dumps(r.get("versions", {})), json.dumps(r.get("devices", {})),
                r["last_seen"], r["state_since"],
            )
            for r in records
        ]
        if not rows:
            return
        with self.lock, self.conn:
            self.conn.executemany(
                """INSERT INTO kiosks VALUES (?,?,?,?,?,?,?,?,?,?)
                   ON CONFLICT(kiosk_id) DO UPDATE SET site=excluded.site, state=excluded.state,
                   reason=excluded.reason, mode=excluded.mode, boot_id=excluded.boot_id,
                   versions=excluded.versions, devices=excluded.devices, last_seen=excluded.last_seen,
                   state_since=excluded.state_since""",
                rows,
            )

    def load_kiosks(self) -> list[dict[str, Any]]:
        return list_kiosks(self.conn)


def list_kiosks(conn: sqlite3.Connection) -> list[dict[str, Any]]:
    out = []
    for row in conn.execute("SELECT * FROM kiosks ORDER BY kiosk_id"):
        rec = dict(row)
        rec["versions"] = json.loads(rec["versions"])
        rec["devices"] = json.loads(rec["devices"])
        out.append(rec)
    return out
