"""Move a controller's fleet store from its SQLite file to PostgreSQL, every row checked.

``kioskctl move-store --data-dir DIR --to postgresql://...``: the controller must be stopped (the
SQLite file is read in one read transaction, so what is moved is one consistent state). The
target must be empty; its schema comes from ``controller.store_pg``'s migrations and, for the
tables beside the store, ``controller.pg_parts``'s: the fleet's settings, the enrolment tokens,
the console's accounts, sessions and API tokens (``console.sqlite3``), the residents' service
backend's tables (queue tickets, appointments, certificates, notices, feedback and its handling,
ratings, volunteer hours), and the roll-outs with their kiosk rows and the releases registry, with
the published bundles of ``data_dir/releases`` (``controller.release_share``: every object read
back and checked), so every instance serves them, operators sign in as before, an issued token
still enrols its kiosk and today's queue goes on numbering where it was. Each table is
copied in one PostgreSQL transaction (pipelined batches), identity counters are set past the
highest id, then every table is read back from both sides and compared row for row: the move
fails, naming the table, if one row is missing, extra or different.
"""

from __future__ import annotations

import collections
import hashlib
import sqlite3
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from contract import release as R
from controller import pg_parts, release_share, sql_dialect, store_pg
from controller.release_registry import release_dir
from controller.rollout_adopt import OLD_NAME
from controller.store import MIGRATIONS, StoreError, connect

# The fleet store's tables, in the order they are moved.
TABLES = ("kiosks", "sites", "kiosk_groups", "devices", "telemetry_history", "events", "alarms", "held_alarms",
          "config_layers",
          "commands", "audit", "actions", "counters")
# Tables whose id PostgreSQL counts.
IDENTITY = ("alarms", "audit", "actions", *pg_parts.SERVICE_BACKEND_IDENTITY)
# Tables beside the fleet store that move with it: the SQLite file in the data folder they are in
# (read when it has them) and their part in ``controller.pg_parts``.
BESIDE = (("controller.sqlite3", "fleet_settings"), ("controller.sqlite3", "enrolment"),
          ("console.sqlite3", "console_accounts"), ("controller.sqlite3", "service_backend"))
# Roll-outs and the releases registry (``controller.rollout_store``): their tables in the store's file.
BESIDE_ROLLOUTS = (("controller.sqlite3", "rollouts"),)
BATCH = 5000


def _columns(src: Any, table: str) -> list[str]:
    return [r[1] for r in src.execute(f"PRAGMA table_info({table})")]


def _select(table: str, columns: list[str]) -> str:
    return f"SELECT {', '.join(_quoted(columns))} FROM {table}"


def _quoted(columns: list[str]) -> list[str]:
    return [f'"{c}"' for c in columns]


def move(data_dir: Path, url: str, *, batch: int = BATCH, clock: Callable[[], float] = time.time) -> dict[str, int]:
    """Copy every fleet table to the empty PostgreSQL database at ``url``; return rows per table."""
    src = connect(data_dir, readonly=True)
    dst = store_pg.PgConnection(url)
    try:
        version = src.execute("PRAGMA user_version").fetchone()[0]
        if version != len(MIGRATIONS):
            raise StoreError(f"the SQLite store is at schema {version}, this kioskctl moves schema "
                             f"{len(MIGRATIONS)}: start the controller of this release on it once first")
        if "svc_tickets" in sql_dialect.tables(src) and "site" not in sql_dialect.columns(src, "svc_tickets"):
            # Tickets numbered fleet-wide (before each site had its queue): the service backend of this
            # release gives each its kiosk's site when it opens the table; moved as they are, they
            # would all land in no site's queue.
            raise StoreError("the service tables are from an older release (tickets without a site): start "
                             "the controller of this release on the store and take one ticket, then move")
        store_pg.migrate(dst)
        _refuse_unmoved_rollouts(Path(data_dir))
        bundles = _local_bundles(Path(data_dir), src)
        for _, part in (*BESIDE, *BESIDE_ROLLOUTS):
            pg_parts.migrate(dst, part)
        for table in (*TABLES, *(t for _, part in (*BESIDE, *BESIDE_ROLLOUTS) for t in pg_parts.TABLES[part])):
            if dst.execute(f"SELECT 1 FROM {table} LIMIT 1").fetchone() is not None:
                raise StoreError(f"the PostgreSQL database is not empty (table {table} has rows): "
                                 "move into a new database")
        src.execute("BEGIN")  # one read snapshot for the copy and the check
        moved = {table: _copy(src, dst, table, batch) for table in TABLES}
        for table in TABLES:
            _check(src, dst, table)
        src.execute("COMMIT")
        for file, part in (*BESIDE, *BESIDE_ROLLOUTS):
            moved.update(_move_beside(Path(data_dir) / file, dst, pg_parts.TABLES[part], batch))
        moved.update(_move_bundles(dst, bundles, clock()))
        return moved
    finally:
        src.close()
        dst.close()


def _refuse_unmoved_rollouts(data_dir: Path) -> None:
    """Roll-outs still in the file an older controller kept them in are not in the store's file
    yet: the controller of this release moves them there when it starts."""
    if (data_dir / OLD_NAME).exists():
        raise StoreError(f"{data_dir / OLD_NAME} holds roll-outs not yet in the store: start the controller of "
                         "this release on it once first (it moves them), then move the store")


def _local_bundles(data_dir: Path, src: Any) -> list[tuple[bytes, R.Manifest, Path]]:
    """The bundle of every published release, from ``data_dir/releases``: its manifest must be the
    one registered. Checked before anything is copied, so a missing bundle stops the move early."""
    if "releases" not in sql_dialect.tables(src):
        return []
    out = []
    for row in src.execute("SELECT component, version, manifest_sha256 FROM releases ORDER BY 1, 2").fetchall():
        folder = release_dir(data_dir, row[0], row[1])
        try:
            raw = (folder / R.MANIFEST_FILE).read_bytes()
        except OSError:
            raise StoreError(f"release {row[0]} {row[1]} is published but {folder} has no {R.MANIFEST_FILE}: "
                             "restore its bundle there (or move from the data folder that has it)") from None
        if hashlib.sha256(raw).hexdigest() != row[2]:
            raise StoreError(f"{folder / R.MANIFEST_FILE} is not the manifest release {row[0]} {row[1]} was "
                             "published with (SHA-256 differs)")
        out.append((raw, R.parse_manifest(raw), folder))
    return out


def _move_bundles(dst: store_pg.PgConnection, bundles: list[tuple[bytes, R.Manifest, Path]],
                  now: float) -> dict[str, int]:
    """The published bundles into the database (``controller.release_share``), then every object
    read back from it and checked against its manifest, so any instance can serve them."""
    objects = 0
    for raw, man, folder in bundles:
        name = f"release {man.component} {man.version}"
        try:
            objects += release_share.store_bundle(dst, folder, man, now)
        except (R.ReleaseRejected, OSError) as exc:
            raise StoreError(f"{name}: a file in {folder} is not the one published ({exc}); "
                             "the move is not complete, keep using the SQLite store") from None
        release_share.put_manifest(dst, man.component, man.version, raw)
    for raw, man, _ in bundles:
        try:
            if release_share.manifest(dst, man.component, man.version) != raw:
                raise release_share.ShareError(f"the manifest of {man.component} {man.version} differs")
            for entry in man.files:
                release_share.check_object(dst, entry)
        except release_share.ShareError as exc:
            raise StoreError(f"{exc}; the move is not complete, keep using the SQLite store") from None
    return {"release_manifests": len(bundles), "release_objects": objects}


def _move_beside(path: Path, dst: store_pg.PgConnection, tables: tuple[str, ...], batch: int) -> dict[str, int]:
    """Copy and check the ``tables`` the SQLite file at ``path`` has (a console that never ran has none)."""
    if not path.exists():
        return {}
    src = sqlite3.connect(f"file:{path}?mode=ro", uri=True, timeout=10)
    try:
        have = sql_dialect.tables(src)
        src.execute("BEGIN")
        moved = {table: _copy(src, dst, table, batch) for table in tables if table in have}
        for table in moved:
            _check(src, dst, table)
        src.execute("COMMIT")
        return moved
    finally:
        src.close()


def _copy(src: Any, dst: store_pg.PgConnection, table: str, batch: int) -> int:
    columns = _columns(src, table)
    insert = (f"INSERT INTO {table} ({', '.join(_quoted(columns))}) "
              f"{'OVERRIDING SYSTEM VALUE ' if table in IDENTITY else ''}VALUES ({', '.join('?' * len(columns))})")
    cur = src.execute(_select(table, columns))
    n = 0
    with dst.raw.transaction():
        while rows := cur.fetchmany(batch):
            dst.executemany(insert, [tuple(r) for r in rows])
            n += len(rows)
        if table in IDENTITY:
            dst.execute(f"SELECT setval(pg_get_serial_sequence('{table}', 'id'), "
                        f"(SELECT COALESCE(MAX(id), 0) + 1 FROM {table}), false)")
    return n


def _check(src: Any, dst: store_pg.PgConnection, table: str) -> None:
    """Every row on both sides, compared as multisets (the two sort text differently)."""
    select = _select(table, _columns(src, table))
    before = collections.Counter(tuple(r) for r in src.execute(select))
    after = collections.Counter(tuple(r) for r in dst.execute(select))
    if before != after:
        missing, extra = sum((before - after).values()), sum((after - before).values())
        raise StoreError(f"table {table}: {missing} rows missing or changed in PostgreSQL, {extra} unexpected; "
                         "the move is not complete, keep using the SQLite store")
