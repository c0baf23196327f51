"""PostgreSQL schemas of the tables that live beside the fleet store: the fleet's settings (its
time zone, ``controller.fleet_clock``), the kiosk enrolment tokens and the console's accounts
(users, sessions, API tokens).
On SQLite they keep their own file and migrations
(``controller.web.accounts``); on PostgreSQL they are tables in the fleet database, so every
controller instance signs in the same operators and serves the same sessions.

Each part has its own numbered track (``part_schema``), so parts add tables without renumbering
the fleet store's migrations (``controller.store_pg``) or each other's. Migrations run under the
same advisory lock as the store's, so several controllers starting at once migrate once.
"""

from __future__ import annotations

from typing import Any

from controller.fleet_clock import SETTINGS_TABLE
from controller.store_pg import StoreUnavailable

# Per part: entry i migrates the part from version i to i+1; never edit a released entry.
PARTS: dict[str, list[str]] = {
    # The controller also creates it at start (IF NOT EXISTS), as on SQLite.
    "fleet_settings": [SETTINGS_TABLE],
    # One-time kiosk enrolment tokens (``controller.enrolment_service``; only their hashes).
    "enrolment": [
        """
        CREATE TABLE enrol_tokens (
            token_hash TEXT PRIMARY KEY, site TEXT NOT NULL, kiosk_id TEXT, issued_at DOUBLE PRECISION NOT NULL,
            expires_at DOUBLE PRECISION NOT NULL, issued_by TEXT NOT NULL DEFAULT '', used_at DOUBLE PRECISION,
            used_by TEXT, serial TEXT
        );
        CREATE INDEX enrol_tokens_used_by ON enrol_tokens(used_by, used_at);
        """,
    ],
    "console_accounts": [
        """
        CREATE TABLE users (
            name TEXT PRIMARY KEY, role TEXT NOT NULL, password TEXT NOT NULL, failed BIGINT NOT NULL DEFAULT 0,
            locked_until DOUBLE PRECISION NOT NULL DEFAULT 0, created DOUBLE PRECISION NOT NULL,
            disabled BIGINT NOT NULL DEFAULT 0
        );
        CREATE TABLE sessions (
            token_hash TEXT PRIMARY KEY, "user" TEXT NOT NULL REFERENCES users(name) ON DELETE CASCADE,
            csrf TEXT NOT NULL, created DOUBLE PRECISION NOT NULL, expires DOUBLE PRECISION NOT NULL
        );
        CREATE INDEX sessions_user ON sessions("user");
        CREATE TABLE api_tokens (
            token_id TEXT PRIMARY KEY, name TEXT NOT NULL, role TEXT NOT NULL, secret_hash TEXT NOT NULL,
            created_by TEXT NOT NULL, created DOUBLE PRECISION NOT NULL,
            last_used DOUBLE PRECISION NOT NULL DEFAULT 0, revoked BIGINT NOT NULL DEFAULT 0
        );
        """,
    ],
}

# The tables each part owns, in the order ``kioskctl move-store`` copies them.
TABLES: dict[str, tuple[str, ...]] = {"fleet_settings": ("fleet_settings",), "enrolment": ("enrol_tokens",),
                                      "console_accounts": ("users", "sessions", "api_tokens")}


def migrate(conn: Any, part: str) -> int:
    """Bring ``part``'s tables to its newest version; refuse a database from a newer release."""
    steps = PARTS[part]
    with conn.raw.transaction():
        conn.execute("SELECT pg_advisory_xact_lock(16016)")
        conn.execute("CREATE TABLE IF NOT EXISTS part_schema (part TEXT PRIMARY KEY, version INTEGER NOT NULL)")
        row = conn.execute("SELECT version FROM part_schema WHERE part = ?", (part,)).fetchone()
        version = int(row[0]) if row else 0
        if version > len(steps):
            raise StoreUnavailable(f"the {part} tables are at schema {version}, newer than this controller "
                                   f"({len(steps)})")
        for i in range(version, len(steps)):
            conn.raw.execute(steps[i])  # type: ignore[arg-type]
        if version < len(steps):
            conn.execute("INSERT INTO part_schema VALUES (?, ?) ON CONFLICT (part) DO UPDATE SET "
                         "version = excluded.version", (part, len(steps)))
    return len(steps)
