"""Roll-outs an older controller kept in ``rollouts.sqlite3`` beside its store, moved into the
fleet database once (``controller.rollout_store``).

When this release first opens the roll-out store (the controller at start, or kioskctl), every
row of the old file (releases, roll-outs, their kiosk rows, settings) is copied into the fleet
database's tables in one transaction and compared there, row for row, before it commits; only
then is the old file renamed to ``rollouts.sqlite3.moved`` (kept, never deleted). A row that
differs from one the fleet database already holds under the same key (two instances' old files
with the same roll-out id, say) stops the move, naming the table and key: nothing is
overwritten, nothing lost, and the old file stays where it is. A file from before per-kiosk rows
(every kiosk inside its roll-out's body) is brought to per-kiosk rows first.
"""

from __future__ import annotations

import contextlib
import json
import logging
import sqlite3
from pathlib import Path
from typing import Any

from controller.rollout_store import SCHEMA, UPSERT, kiosk_rows
from controller.store import StoreError

log = logging.getLogger(__name__)

OLD_NAME = "rollouts.sqlite3"
MOVED_SUFFIX = ".moved"
# Each table with its key, in the order they are copied.
TABLES: dict[str, tuple[str, ...]] = {"releases": ("component", "version"), "rollouts": ("id",),
                                      "rollout_kiosks": ("rollout_id", "kiosk_id"), "rollout_settings": ("name",)}
_LAYOUT = 2  # the old file's PRAGMA user_version: 2 = one row per kiosk


def adopt(store: Any) -> dict[str, int]:
    """Move ``store.data_dir/rollouts.sqlite3`` into ``store``'s tables; rows moved per table
    (empty when there is no old file)."""
    old = Path(store.data_dir) / OLD_NAME
    if not old.exists():
        return {}
    rows = _read_old(old)
    c = store.conn()
    c.execute("BEGIN IMMEDIATE")
    try:
        for table, items in rows.items():
            _insert(c, table, items)
        for table, items in rows.items():
            _check(c, table, items)
        c.execute("COMMIT")
    except BaseException:
        c.execute("ROLLBACK")
        raise
    _set_aside(old)
    moved = {t: len(items[1]) for t, items in rows.items()}
    log.warning("roll-outs moved from %s into the fleet database", old, extra={"fields": moved})
    return moved


def _read_old(path: Path) -> dict[str, tuple[list[str], list[tuple]]]:
    """Every row of the old file, per table: (columns, rows)."""
    src = sqlite3.connect(path, timeout=30, isolation_level=None)
    src.row_factory = sqlite3.Row
    try:
        src.executescript(SCHEMA)  # a file from before some of the tables: they are empty
        if src.execute("PRAGMA user_version").fetchone()[0] < _LAYOUT:
            src.execute("BEGIN IMMEDIATE")
            for row in src.execute("SELECT id, body FROM rollouts").fetchall():
                body = json.loads(row["body"])
                kiosks = body.pop("kiosks", None)
                if kiosks is not None:
                    src.executemany(UPSERT, kiosk_rows(row["id"], kiosks.items(), body.get("updated_at", 0.0)))
                    src.execute("UPDATE rollouts SET body = ? WHERE id = ?", (json.dumps(body), row["id"]))
            src.execute(f"PRAGMA user_version = {_LAYOUT}")
            src.execute("COMMIT")
        out = {}
        for table in TABLES:
            columns = [r[1] for r in src.execute(f"PRAGMA table_info({table})")]
            out[table] = (columns, [tuple(r) for r in src.execute(f"SELECT {', '.join(columns)} FROM {table}")])
        return out
    finally:
        src.close()


def _insert(c: Any, table: str, items: tuple[list[str], list[tuple]]) -> None:
    columns, rows = items
    if rows:
        c.executemany(f"INSERT INTO {table} ({', '.join(columns)}) VALUES ({', '.join('?' * len(columns))}) "
                      f"ON CONFLICT ({', '.join(TABLES[table])}) DO NOTHING", rows)


def _check(c: Any, table: str, items: tuple[list[str], list[tuple]]) -> None:
    columns, rows = items
    keys = TABLES[table]
    at = [columns.index(k) for k in keys]
    where = " AND ".join(f"{k} = ?" for k in keys)
    for row in rows:
        key = tuple(row[i] for i in at)
        got = c.execute(f"SELECT {', '.join(columns)} FROM {table} WHERE {where}", key).fetchone()
        if got is None or tuple(got) != row:
            raise StoreError(f"moving {OLD_NAME} into the fleet database: {table} {key} "
                             f"{'is missing' if got is None else 'differs from the row already there'}; "
                             f"nothing was moved and {OLD_NAME} is kept: resolve the conflict, then start again")


def _set_aside(old: Path) -> None:
    """Rename the old file (and a WAL left beside it) out of the way; another process that moved
    it at the same moment (controller and kioskctl) has already done so."""
    target = old.with_name(old.name + MOVED_SUFFIX)
    n = 1
    while target.exists():
        n += 1
        target = old.with_name(f"{old.name}{MOVED_SUFFIX}.{n}")
    for suffix in ("-wal", "-shm"):
        side = old.with_name(old.name + suffix)
        with contextlib.suppress(FileNotFoundError):
            side.rename(target.with_name(target.name + suffix))
    with contextlib.suppress(FileNotFoundError):
        old.rename(target)
