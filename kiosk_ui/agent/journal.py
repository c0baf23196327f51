"""The kiosk's local SQLite journal: store-and-forward events, seen command ids, small agent state.

An event is written here before it is published and removed only once the controller says it
is committed to its database (``events/ack``, by event id), or, facing an older controller that
never acknowledges, once the broker acknowledges it (PUBACK). So a kiosk that is offline, or
restarts, or a controller that is down longer than the broker queues for it, loses nothing. The
journal is bounded: past ``max_events`` the oldest are dropped and the caller says so in an event.

When the journal cannot be written (the kiosk's disk is full: SQLite says SQLITE_FULL), an event
is held in memory, in order, and written first as soon as a write succeeds again (the agent's
sender retries every round): a full disk loses nothing unless the process also dies before the
disk has room. What is held is bounded by ``max_held``; past it the oldest held are dropped and
counted like a journal overflow.
"""

from __future__ import annotations

import collections
import json
import logging
import sqlite3
import threading
from pathlib import Path
from typing import Any

log = logging.getLogger(__name__)

SCHEMA = """
CREATE TABLE IF NOT EXISTS outbox (seq INTEGER PRIMARY KEY AUTOINCREMENT, topic TEXT NOT NULL,
                                   payload BLOB NOT NULL);
CREATE TABLE IF NOT EXISTS seen_commands (id TEXT PRIMARY KEY, expires_at REAL NOT NULL);
CREATE TABLE IF NOT EXISTS kv (key TEXT PRIMARY KEY, value TEXT NOT NULL);
"""


class Journal:
    def __init__(self, path: str | Path, *, max_events: int = 10_000, max_held: int = 1_000) -> None:
        Path(path).parent.mkdir(parents=True, exist_ok=True)
        self.max_events = max_events
        self.max_held = max_held
        # Events not yet written because the disk was full (topic, payload, event id), oldest first.
        self._held: collections.deque[tuple[str, bytes, str | None]] = collections.deque()
        self._stalled = False  # a write failed and has not succeeded since: said once per outage
        self._lock = threading.Lock()
        self._conn = sqlite3.connect(str(path), check_same_thread=False, isolation_level=None, timeout=10)
        self._conn.execute("PRAGMA journal_mode=WAL")
        # FULL: an event the kiosk believes journaled must survive a power cut.
        self._conn.execute("PRAGMA synchronous=FULL")
        self._conn.executescript(SCHEMA)
        columns = {row[1] for row in self._conn.execute("PRAGMA table_info(outbox)")}
        if "event_id" not in columns:
            # A journal written before controller acknowledgements: its events get their ids.
            self._conn.execute("ALTER TABLE outbox ADD COLUMN event_id TEXT")
            rows = self._conn.execute("SELECT seq, payload FROM outbox").fetchall()
            self._conn.executemany("UPDATE outbox SET event_id = ? WHERE seq = ?",
                                   [(_id_of(payload), seq) for seq, payload in rows])
        self._conn.execute("CREATE INDEX IF NOT EXISTS outbox_event ON outbox (event_id)")
        self._depth = self._conn.execute("SELECT COUNT(*) FROM outbox").fetchone()[0]

    def close(self) -> None:
        with self._lock:
            self._conn.close()

    def append(self, topic: str, payload: bytes, event_id: str | None = None) -> int:
        """Journal one message (after any still held); return how many of the oldest were dropped
        to stay in bounds. A message the disk has no room for is held, not lost."""
        with self._lock:
            self._held.append((topic, payload, event_id))
            dropped = 0
            if len(self._held) > self.max_held:
                dropped = len(self._held) - self.max_held
                for _ in range(dropped):
                    self._held.popleft()
            return dropped + self._write_held()

    def flush_held(self) -> int:
        """Write what a full disk held back; returns how many were dropped to stay in bounds."""
        if not self._held:
            return 0
        with self._lock:
            return self._write_held()

    def held(self) -> int:
        return len(self._held)

    def _write_held(self) -> int:
        dropped = 0
        while self._held:
            topic, payload, event_id = self._held[0]
            try:
                dropped += self._insert(topic, payload, event_id)
            except sqlite3.OperationalError as exc:  # SQLITE_FULL (disk full), SQLITE_IOERR, locked
                if not self._stalled:
                    log.warning("event journal not writable (%s): holding events in memory", exc)
                    self._stalled = True
                return dropped
            self._held.popleft()
        if self._stalled:
            log.warning("event journal writable again: held events written")
            self._stalled = False
        return dropped

    def _insert(self, topic: str, payload: bytes, event_id: str | None) -> int:
        self._conn.execute("BEGIN IMMEDIATE")
        try:
            self._conn.execute("INSERT INTO outbox (topic, payload, event_id) VALUES (?, ?, ?)",
                               (topic, payload, event_id))
            depth = self._depth + 1
            dropped = 0
            if depth > self.max_events:
                dropped = depth - self.max_events
                self._conn.execute("DELETE FROM outbox WHERE seq IN (SELECT seq FROM outbox ORDER BY seq LIMIT ?)",
                                   (dropped,))
                depth -= dropped
            self._conn.execute("COMMIT")
        except sqlite3.Error:
            if self._conn.in_transaction:
                self._conn.execute("ROLLBACK")
            raise
        self._depth = depth
        return dropped

    def pending(self, after: int, limit: int = 200) -> list[tuple[int, str, bytes, str]]:
        """Journaled messages after ``after``, oldest first: (seq, topic, payload, event id)."""
        with self._lock:
            rows = self._conn.execute(
                "SELECT seq, topic, payload, event_id FROM outbox WHERE seq > ? ORDER BY seq LIMIT ?",
                (after, limit)).fetchall()
        return [(seq, topic, payload, event_id or "") for seq, topic, payload, event_id in rows]

    def remove(self, seqs: list[int]) -> None:
        if not seqs:
            return
        with self._lock:
            self._conn.execute("BEGIN IMMEDIATE")
            before = self._conn.total_changes
            self._conn.executemany("DELETE FROM outbox WHERE seq = ?", [(s,) for s in seqs])
            self._depth -= self._conn.total_changes - before
            self._conn.execute("COMMIT")

    def remove_events(self, event_ids: list[str]) -> int:
        """Drop the events the controller has committed; returns how many were still here."""
        if not event_ids:
            return 0
        with self._lock:
            self._conn.execute("BEGIN IMMEDIATE")
            before = self._conn.total_changes
            self._conn.executemany("DELETE FROM outbox WHERE event_id = ?", [(i,) for i in event_ids])
            removed = self._conn.total_changes - before
            self._depth -= removed
            self._conn.execute("COMMIT")
            return removed

    def depth(self) -> int:
        return self._depth + len(self._held)

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


def _id_of(payload: bytes) -> str:
    """The event id inside a payload journaled before the ``event_id`` column existed."""
    try:
        body = json.loads(payload)
    except (ValueError, UnicodeDecodeError):
        return ""
    return str(body.get("id", "")) if isinstance(body, dict) else ""
