"""The kiosk's local SQLite journal: store-and-forward events, seen command ids, small agent state.

An event is written here before it is published and removed only after the broker acknowledges
it (PUBACK), so a kiosk that is offline, or restarts, loses nothing. The journal is bounded: past
``max_events`` the oldest are dropped and the caller says so in an event.
"""

from __future__ import annotations

import json
import sqlite3
import threading
from pathlib import Path
from typing import Any

SCHEMA = """
CREATE TABLE IF NOT EXISTS outbox (seq INTEGER PRIMARY KEY AUTOINCREMENT, topic TEXT NOT NULL,
                                   payload BLOB NOT NULL);
CREATE TABLE IF NOT EXISTS seen_commands (id TEXT PRIMARY KEY, expires_at REAL NOT NULL);
CREATE TABLE IF NOT EXISTS kv (key TEXT PRIMARY KEY, value TEXT NOT NULL);
"""


class Journal:
    def __init__(self, path: str | Path, *, max_events: int = 10_000) -> None:
        Path(path).parent.mkdir(parents=True, exist_ok=True)
        self.max_events = max_events
        self._lock = threading.Lock()
        self._conn = sqlite3.connect(str(path), check_same_thread=False, isolation_level=None, timeout=10)
        self._conn.execute("PRAGMA journal_mode=WAL")
        # FULL: an event the kiosk believes journaled must survive a power cut.
        self._conn.execute("PRAGMA synchronous=FULL")
        self._conn.executescript(SCHEMA)
        self._depth = self._conn.execute("SELECT COUNT(*) FROM outbox").fetchone()[0]

    def close(self) -> None:
        with self._lock:
            self._conn.close()

    def append(self, topic: str, payload: bytes) -> int:
        """Journal one message; return how many of the oldest were dropped to stay in bounds."""
        with self._lock:
            self._conn.execute("BEGIN IMMEDIATE")
            self._conn.execute("INSERT INTO outbox (topic, payload) VALUES (?, ?)", (topic, payload))
            self._depth += 1
            dropped = 0
            if self._depth > self.max_events:
                dropped = self._depth - self.max_events
                self._conn.execute("DELETE FROM outbox WHERE seq IN (SELECT seq FROM outbox ORDER BY seq LIMIT ?)",
                                   (dropped,))
                self._depth -= dropped
            self._conn.execute("COMMIT")
            return dropped

    def pending(self, after: int, limit: int = 200) -> list[tuple[int, str, bytes]]:
        with self._lock:
            return self._conn.execute("SELECT seq, topic, payload FROM outbox WHERE seq > ? ORDER BY seq LIMIT ?",
                                      (after, limit)).fetchall()

    def remove(self, seqs: list[int]) -> None:
        if not seqs:
            return
        with self._lock:
            self._conn.execute("BEGIN IMMEDIATE")
            before = self._conn.total_changes
            self._conn.executemany("DELETE FROM outbox WHERE seq = ?", [(s,) for s in seqs])
            self._depth -= self._conn.total_changes - before
            self._conn.execute("COMMIT")

    def depth(self) -> int:
        return self._depth

    def first_sight(self, command_id: str, expires_at: float, now: float) -> bool:
        """Record a verified command id; False if it was seen before (a replay).

        Ids are kept until their command expires; after that expiry alone rejects a replay.
        """
        with self._lock:
            self._conn.execute("DELETE FROM seen_commands WHERE expires_at < ?", (now - 60,))
            cur = self._conn.execute("INSERT OR IGNORE INTO seen_commands VALUES (?, ?)", (command_id, expires_at))
            return cur.rowcount == 1

    def get(self, key: str, default: Any = None) -> Any:
        with self._lock:
            row = self._conn.execute("SELECT value FROM kv WHERE key = ?", (key,)).fetchone()
        return json.loads(row[0]) if row else default

    def put(self, key: str, value: Any) -> None:
        with self._lock:
            self._conn.execute("INSERT OR REPLACE INTO kv VALUES (?, ?)", (key, json.dumps(value)))
