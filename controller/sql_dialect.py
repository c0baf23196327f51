"""What SQLite and PostgreSQL say differently, in one place, for every reader and writer of the
fleet database.

The project's SQL is written once in the dialect both accept (``?`` placeholders, which
``controller.store_pg.PgConnection`` turns into ``%s``; ``ON CONFLICT ... DO UPDATE/NOTHING``;
``RETURNING``; times as epoch seconds computed in Python, never ``now()``). What cannot be
written once lives here: the catalogue queries (which tables and columns exist), which errors
mean "that table is not there yet" or "the database cannot answer now", and case-insensitive
matching. A connection says its dialect by a ``dialect`` attribute (``PgConnection`` has one; a
``sqlite3.Connection`` is SQLite).
"""

from __future__ import annotations

import sqlite3
from typing import Any

SQLITE = "sqlite"
POSTGRESQL = "postgresql"


def name(conn: Any) -> str:
    return getattr(conn, "dialect", SQLITE)


def _psycopg() -> Any:
    try:
        import psycopg
    except ImportError:  # a SQLite-only install (no controller extra): only sqlite3's errors exist
        return None
    return psycopg


def tables(conn: Any) -> set[str]:
    """The tables that exist in the connection's database (PostgreSQL: its current schema)."""
    if name(conn) == POSTGRESQL:
        rows = conn.execute("SELECT table_name FROM information_schema.tables WHERE table_schema = current_schema()")
    else:
        rows = conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")
    return {r[0] for r in rows}


def columns(conn: Any, table: str) -> set[str]:
    """The columns of ``table`` (empty when there is no such table)."""
    if not table.replace("_", "").isalnum():
        raise ValueError(f"bad table name {table!r}")
    if name(conn) == POSTGRESQL:
        rows = conn.execute("SELECT column_name FROM information_schema.columns "
                            "WHERE table_schema = current_schema() AND table_name = ?", (table,))
        return {r[0] for r in rows}
    return {r[1] for r in conn.execute(f"PRAGMA table_info({table})")}


def missing_schema(exc: BaseException) -> bool:
    """``exc`` says a table or column is not there (a part that has not created it yet)."""
    if isinstance(exc, sqlite3.OperationalError):
        return "no such table" in str(exc) or "no such column" in str(exc)
    pg = _psycopg()
    return pg is not None and isinstance(exc, pg.errors.UndefinedTable | pg.errors.UndefinedColumn)


def unavailable_errors() -> tuple[type[Exception], ...]:
    """Errors meaning the database cannot answer now (locked past the wait, connection lost):
    trying again later may work, the request itself was not wrong."""
    pg = _psycopg()
    return (sqlite3.OperationalError,) + ((pg.OperationalError,) if pg is not None else ())


def connection_lost(exc: BaseException) -> bool:
    """A PostgreSQL connection that cannot be used again (server restarted, network): reopen it."""
    pg = _psycopg()
    return pg is not None and isinstance(exc, pg.OperationalError | pg.InterfaceError)


def lost_a_race(exc: BaseException) -> bool:
    """PostgreSQL gave this transaction up for another's sake (a deadlock between two controller
    instances' lock sets, a serialization failure): nothing of it was applied, and the same work
    done again may well succeed."""
    return getattr(exc, "sqlstate", None) in ("40P01", "40001")


def all_errors() -> tuple[type[Exception], ...]:
    """Every error either database driver raises."""
    pg = _psycopg()
    return (sqlite3.Error,) + ((pg.Error,) if pg is not None else ())


def like(conn: Any) -> str:
    """The operator that matches text ignoring case (SQLite's ``LIKE`` already ignores ASCII case)."""
    return "ILIKE" if name(conn) == POSTGRESQL else "LIKE"


def lock(conn: Any, space: int, key: str) -> None:
    """Serialise the writers of ``key`` (in the namespace ``space``) until the open transaction ends.

    SQLite needs nothing: a write transaction (``BEGIN IMMEDIATE``) holds the file's one write
    lock, so writers of one database never overlap. On PostgreSQL several controller instances
    write at once: a transaction-level advisory lock on ``(space, hashtext(key))`` makes the next
    writer of that key wait for the commit, and under READ COMMITTED its next statement then sees
    what the first wrote. Two keys that hash alike only wait for each other, never mix up."""
    if name(conn) == POSTGRESQL:
        conn.execute(f"SELECT pg_advisory_xact_lock({int(space)}, hashtext(?))", (key,))


def integrity_errors() -> tuple[type[Exception], ...]:
    """Errors meaning a row broke a constraint (a key that exists already), on either database."""
    pg = _psycopg()
    return (sqlite3.IntegrityError,) + ((pg.IntegrityError,) if pg is not None else ())
