"""The fleet database as a controller config names it: the one way every reader and writer
(console, kioskctl, the audit log, enrolment tokens, the service backend) opens it.

``FleetDb.from_config(config)``: the SQLite file in ``data_dir`` when ``database`` is empty (the
single-machine default), else the PostgreSQL database at its ``postgresql://`` URL. A bare data
folder (``FleetDb.of(path)``) is the SQLite store there, so callers written for one machine keep
working. What the two dialects say differently is in ``controller.sql_dialect``.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from controller import store, store_pg

_PASSWORD = re.compile(r"(//[^:/@]+:)[^@]*@")


@dataclass(frozen=True)
class FleetDb:
    data_dir: Path
    url: str = ""

    def __post_init__(self) -> None:
        object.__setattr__(self, "data_dir", Path(self.data_dir))
        if self.url and not store_pg.SCHEME.match(self.url):
            raise store.StoreError(f"database must be a postgresql:// URL (or empty for SQLite), "
                                   f"got {self.url[:40]!r}")

    @classmethod
    def of(cls, where: FleetDb | Path | str) -> FleetDb:
        return where if isinstance(where, FleetDb) else cls(Path(where))

    @classmethod
    def from_config(cls, config: Any) -> FleetDb:
        """From a ``ControllerConfig`` (or anything with ``data_dir`` and ``database``)."""
        return cls(Path(config.data_dir), getattr(config, "database", "") or "")

    @property
    def on_postgresql(self) -> bool:
        return bool(self.url)

    @property
    def key(self) -> str:
        """Identifies the database (for caches of open connections)."""
        return self.url or str(self.data_dir.resolve() / store.DB_NAME)

    def describe(self) -> str:
        """Where the database is, for messages (a URL's password is left out)."""
        return _PASSWORD.sub(r"\1***@", self.url) if self.url else str(self.data_dir / store.DB_NAME)

    def exists(self) -> bool:
        """SQLite: the file is there (a reader must not create an empty one). PostgreSQL: the
        database is named by the operator; a wrong URL fails at connect with the reason."""
        return bool(self.url) or (self.data_dir / store.DB_NAME).exists()

    def connect(self, *, readonly: bool = False) -> Any:
        """A connection in autocommit mode (each statement commits; ``?`` placeholders on both).
        ``readonly``: PostgreSQL refuses writes on it; SQLite opens the file read-only and fails,
        naming the path, when there is none."""
        if not self.url:
            return store.connect(self.data_dir, readonly=readonly)
        # Long-lived in the console and the API: a restarted PostgreSQL is reconnected to.
        return PgTxConnection(self.url, reconnect=True,
                              setup=("SET default_transaction_read_only = on",) if readonly else ())

    def open_part(self, part: str) -> Any:
        """PostgreSQL only: a read-write connection with ``part``'s tables (``controller.pg_parts``)
        up to date."""
        from controller import pg_parts

        conn = self.connect()
        try:
            pg_parts.migrate(conn, part)
        except BaseException:
            conn.close()
            raise
        return conn

    def open_migrated(self) -> Any:
        """A read-write connection with the fleet store's schema up to date (created if new)."""
        conn = self.connect()
        try:
            store_pg.migrate(conn) if self.url else store.migrate(conn)
        except BaseException:
            conn.close()
            raise
        return conn


def with_name(url: str, application_name: str) -> str:
    """A PostgreSQL URL whose connections name themselves ``application_name`` in ``pg_stat_activity``
    (which part of which instance holds a connection or a lock)."""
    return url + ("&" if "?" in url else "?") + "application_name=" + application_name


class PgTxConnection(store_pg.PgConnection):
    """A PostgreSQL connection that also works as ``sqlite3.Connection`` does in a ``with``
    block: one transaction, committed when the block ends, rolled back when it raises. Code
    written as ``with conn: ...`` for SQLite runs unchanged on PostgreSQL."""

    def __enter__(self) -> PgTxConnection:
        self.ensure_open()
        self._tx: Any = self.raw.transaction()
        self._tx.__enter__()
        return self

    def __exit__(self, exc_type: Any, exc: Any, tb: Any) -> None:
        tx, self._tx = self._tx, None
        tx.__exit__(exc_type, exc, tb)
