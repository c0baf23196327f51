"""The service backend's own tables in the fleet database (``svc_`` prefix, created if missing).

They live where the fleet store is (``controller.fleet_db``): in the SQLite file of ``data_dir``
(created and upgraded here), or in the PostgreSQL database, where their schema is a numbered
track of ``controller.pg_parts`` (``service_backend``). Either way the catalogue's default
notices are seeded once, here.

No table holds an ID number or a name, except ``svc_certificates``: the certificate a resident asked
for names its holder, with the ID number masked. Residents are otherwise known by ``resident_ref``,
a one-way reference computed on the kiosk. ``svc_feedback.phone`` holds a number only when the
resident typed it to be called back.
"""

from __future__ import annotations

import json
import sqlite3
from typing import Any

from contract.catalogue import load_default_document
from controller import sql_dialect

SCHEMA = """
CREATE TABLE IF NOT EXISTS svc_tickets (
    id INTEGER PRIMARY KEY, kiosk_id TEXT NOT NULL, site TEXT NOT NULL DEFAULT '', day TEXT NOT NULL,
    counter TEXT NOT NULL, number TEXT NOT NULL, seq INTEGER NOT NULL, status TEXT NOT NULL DEFAULT 'waiting',
    issued_at REAL NOT NULL, called_at REAL, called_by TEXT, call_ref TEXT, UNIQUE(day, site, counter, seq));
CREATE TABLE IF NOT EXISTS svc_appointments (
    code TEXT PRIMARY KEY, kiosk_id TEXT NOT NULL, site TEXT NOT NULL, slot TEXT NOT NULL,
    resident_ref TEXT NOT NULL, booked_at REAL NOT NULL, status TEXT NOT NULL DEFAULT 'booked');
CREATE INDEX IF NOT EXISTS svc_appointments_slot ON svc_appointments(site, slot);
CREATE TABLE IF NOT EXISTS svc_certificates (
    code TEXT PRIMARY KEY, kiosk_id TEXT NOT NULL, kind TEXT NOT NULL, holder_name TEXT NOT NULL,
    id_masked TEXT NOT NULL, issued_at REAL NOT NULL);
CREATE TABLE IF NOT EXISTS svc_volunteer_sessions (
    id INTEGER PRIMARY KEY, resident_ref TEXT NOT NULL, kiosk_id TEXT NOT NULL,
    started REAL NOT NULL, ended REAL, hours REAL NOT NULL DEFAULT 0);
CREATE INDEX IF NOT EXISTS svc_volunteer_ref ON svc_volunteer_sessions(resident_ref);
CREATE TABLE IF NOT EXISTS svc_ss_accounts (
    card_ref TEXT PRIMARY KEY, status TEXT NOT NULL, insured_since TEXT NOT NULL DEFAULT '',
    medical_balance REAL NOT NULL DEFAULT 0);
CREATE TABLE IF NOT EXISTS svc_notices (
    id TEXT PRIMARY KEY, groups TEXT NOT NULL, titles TEXT NOT NULL, published REAL NOT NULL);
CREATE TABLE IF NOT EXISTS svc_feedback (
    ref TEXT PRIMARY KEY, kiosk_id TEXT NOT NULL, category TEXT NOT NULL, urgency TEXT NOT NULL,
    created REAL NOT NULL, status TEXT NOT NULL DEFAULT 'open', phone TEXT NOT NULL DEFAULT '',
    problem TEXT NOT NULL DEFAULT '');
CREATE TABLE IF NOT EXISTS svc_ratings (
    id INTEGER PRIMARY KEY, kiosk_id TEXT NOT NULL, service TEXT NOT NULL, stars INTEGER NOT NULL,
    tags TEXT NOT NULL, created REAL NOT NULL);
"""


# Columns added after the first release: (table, column, declaration). Added when missing, so a
# database made by an older backend keeps its rows (tickets called before have no called_at).
ADDED_COLUMNS = (
    ("svc_tickets", "called_at", "REAL"),
    ("svc_tickets", "called_by", "TEXT"),
    ("svc_tickets", "call_ref", "TEXT"),
    ("svc_feedback", "phone", "TEXT NOT NULL DEFAULT ''"),
    # The common problem the resident chose (the catalogue's feedback problem step); '' before it.
    ("svc_feedback", "problem", "TEXT NOT NULL DEFAULT ''"),
    # The issuing kiosk's site from the registry (its enrolment record), never from the request.
    ("svc_certificates", "site", "TEXT NOT NULL DEFAULT ''"),
)
INDEXES = """
CREATE UNIQUE INDEX IF NOT EXISTS svc_tickets_call_ref ON svc_tickets(call_ref) WHERE call_ref IS NOT NULL;
CREATE INDEX IF NOT EXISTS svc_tickets_called ON svc_tickets(site, counter, called_at);
CREATE INDEX IF NOT EXISTS svc_tickets_waiting ON svc_tickets(site, day, status);
"""
# Before tickets carried their site, numbers were unique per day and counter across the whole fleet
# (UNIQUE(day, counter, seq)): SQLite cannot change a constraint, so the table is rebuilt once, in one
# transaction, each old ticket taking the site its kiosk has in the registry.
TICKETS_BY_SITE = """
BEGIN IMMEDIATE;
CREATE TABLE svc_tickets_by_site (
    id INTEGER PRIMARY KEY, kiosk_id TEXT NOT NULL, site TEXT NOT NULL DEFAULT '', day TEXT NOT NULL,
    counter TEXT NOT NULL, number TEXT NOT NULL, seq INTEGER NOT NULL, status TEXT NOT NULL DEFAULT 'waiting',
    issued_at REAL NOT NULL, called_at REAL, called_by TEXT, call_ref TEXT, UNIQUE(day, site, counter, seq));
INSERT INTO svc_tickets_by_site (id, kiosk_id, site, day, counter, number, seq, status, issued_at, called_at,
                                 called_by, call_ref)
    SELECT id, kiosk_id, {site}, day, counter, number, seq, status, issued_at, called_at, called_by, call_ref
    FROM svc_tickets;
DROP TABLE svc_tickets;
ALTER TABLE svc_tickets_by_site RENAME TO svc_tickets;
COMMIT;
"""


def ensure_schema(conn: Any) -> None:
    """Create the tables if missing and seed the default notices once (an operator may edit them)."""
    if sql_dialect.name(conn) == sql_dialect.POSTGRESQL:
        from controller import pg_parts

        # The ops read the fleet's time zone (``controller.fleet_clock``): a statement failing on a
        # missing table would abort a request's whole transaction on PostgreSQL.
        pg_parts.migrate(conn, "fleet_settings")
        pg_parts.migrate(conn, "service_backend")
        if conn.execute("SELECT 1 FROM svc_seeded WHERE name='notices'").fetchone() is None:
            with conn.raw.transaction():
                # Several instances may start at once: one seeds, the others find it done.
                conn.execute("SELECT pg_advisory_xact_lock(16016)")
                _seed_notices(conn)
        return
    _sqlite_schema(conn)
    with conn:
        _seed_notices(conn)


def _sqlite_schema(conn: sqlite3.Connection) -> None:
    with conn:
        conn.executescript(SCHEMA)
        for table, column, decl in ADDED_COLUMNS:
            have = {r[1] for r in conn.execute(f"PRAGMA table_info({table})")}
            if column not in have:
                conn.execute(f"ALTER TABLE {table} ADD COLUMN {column} {decl}")
    if "site" not in {r[1] for r in conn.execute("PRAGMA table_info(svc_tickets)")}:
        registry = conn.execute("SELECT 1 FROM sqlite_master WHERE type='table' AND name='kiosks'").fetchone()
        try:
            conn.executescript(TICKETS_BY_SITE.format(
                site="COALESCE((SELECT k.site FROM kiosks k WHERE k.kiosk_id = svc_tickets.kiosk_id), '')"
                if registry else "''"))
        except sqlite3.Error:
            if conn.in_transaction:
                conn.execute("ROLLBACK")  # the old table stays as it was
            raise
    with conn:
        conn.executescript(INDEXES)
        conn.execute("CREATE TABLE IF NOT EXISTS svc_seeded (name TEXT PRIMARY KEY)")


def _seed_notices(conn: Any) -> None:
    # The catalogue's default notices are seeded once: an operator who withdraws them all must
    # not see them come back at the next start (svc_seeded remembers; a store seeded before it
    # existed has notices, and is only marked).
    if conn.execute("SELECT 1 FROM svc_seeded WHERE name='notices'").fetchone() is not None:
        return
    if conn.execute("SELECT COUNT(*) FROM svc_notices").fetchone()[0] == 0:
        doc = load_default_document()
        conn.executemany(
            "INSERT INTO svc_notices VALUES (?,?,?,0)",
            [(n["id"], json.dumps(n["groups"]), json.dumps(n["titles"], ensure_ascii=False))
             for n in doc.get("notices", [])],
        )
    conn.execute("INSERT INTO svc_seeded (name) VALUES ('notices')")


def connect(db: Any) -> Any:
    """An autocommit read-write connection to the fleet database ``db`` (``controller.fleet_db.FleetDb``):
    statements commit one by one, transactions are explicit (``BEGIN IMMEDIATE`` on SQLite)."""
    if db.on_postgresql:
        return db.connect()
    from controller.store import DB_NAME

    return sqlite3.connect(db.data_dir / DB_NAME, timeout=10, isolation_level=None, check_same_thread=False)


# PostgreSQL databases whose service tables this process brought up to date: a console page then
# does not take the migrations' lock again (SQLite's upgrade is only catalogue reads when current).
_current: set[str] = set()


def open_tables(db: Any) -> Any:
    """:func:`connect`, with the service tables up to date, for the console and ``kioskctl``. Raises
    ``StoreError`` naming what is missing when the controller never ran there (no database, no
    fleet registry)."""
    from controller.store import StoreError

    if not db.exists():
        raise StoreError(f"no controller database at {db.describe()} (is --data-dir right?)")
    conn = connect(db)
    try:
        if db.key not in _current:
            if "kiosks" not in sql_dialect.tables(conn):
                raise StoreError(f"the fleet registry in {db.describe()} has not been created yet "
                                 "(start kiosk-controller once)")
            ensure_schema(conn)  # cheap when up to date; adds newer columns to an older database
            if db.on_postgresql:
                _current.add(db.key)
    except BaseException:
        conn.close()
        raise
    return conn
