"""Read-only queries the console makes against the fleet store and the service backend's tables.

The console never writes the fleet controller's tables; it reads them through one read-only
connection per database (``controller.fleet_db.FleetDb``: the SQLite file in a data folder or the
PostgreSQL database of the controller's ``database`` setting; a bare data folder means SQLite).
Tables that another part has not created yet read as empty, so the console shows an empty state
instead of failing.
"""

from __future__ import annotations

import contextlib
import json
import threading
from pathlib import Path
from typing import Any

from controller import sql_dialect
from controller.fleet_db import FleetDb

Where = FleetDb | Path | str
_conns: dict[str, tuple[Any, threading.Lock]] = {}
_guard = threading.Lock()


def _conn(db: FleetDb) -> tuple[Any, threading.Lock]:
    with _guard:
        if db.key not in _conns:
            _conns[db.key] = (db.connect(readonly=True), threading.Lock())
        return _conns[db.key]


def _drop(db: FleetDb) -> None:
    """Forget a connection the server closed (PostgreSQL restarted): the next read reconnects."""
    with _guard:
        conn, _ = _conns.pop(db.key, (None, None))
    if conn is not None:
        with contextlib.suppress(Exception):  # it is broken already; closing is a courtesy
            conn.close()


def close_all() -> None:
    with _guard:
        for conn, _ in _conns.values():
            conn.close()
        _conns.clear()


def _run(where: Where, default: Any, fn) -> Any:
    """``fn(conn)`` on the database's shared read connection; ``default`` when there is no
    database yet or ``fn`` reads a table or column not created yet."""
    db = FleetDb.of(where)
    if not db.exists():
        return default
    conn, lock = _conn(db)
    with lock:
        try:
            return fn(conn)
        except Exception as exc:
            if sql_dialect.missing_schema(exc):
                return default
            if sql_dialect.connection_lost(exc):
                _drop(db)
            raise


def fetch(where: Where, sql: str, args: tuple | list = ()) -> list[dict[str, Any]]:
    return _run(where, [], lambda conn: [dict(r) for r in conn.execute(sql, tuple(args)).fetchall()])


def tables(where: Where) -> set[str]:
    return _run(where, set(), sql_dialect.tables)


def columns(where: Where, table: str) -> set[str]:
    if not table.replace("_", "").isalnum():
        raise ValueError(f"bad table name {table!r}")
    return _run(where, set(), lambda conn: sql_dialect.columns(conn, table))


def _kiosk(row: dict[str, Any]) -> dict[str, Any]:
    for key in ("versions", "devices"):
        val = row.get(key)
        if isinstance(val, str):
            try:
                row[key] = json.loads(val)
            except json.JSONDecodeError:
                row[key] = {}
    return row


def _with_devices(data_dir: Where, rows: list[dict[str, Any]], where: str = "", args: tuple = ()) -> list[dict]:
    """Attach each kiosk's retained device status (``devices`` table) and groups, when they exist.

    The retained ``devices/{name}`` message carries ``required_action``; telemetry only a state word.
    """
    kiosks = {r["kiosk_id"]: _kiosk(r) for r in rows}
    for d in fetch(data_dir, f"SELECT kiosk_id, name, state, detail, required_action FROM devices{where}", args):
        k = kiosks.get(d["kiosk_id"])
        if k is not None:
            if not isinstance(k.get("devices"), dict):
                k["devices"] = {}
            k["devices"][d["name"]] = {"state": d["state"], "detail": d["detail"],
                                       "required_action": d["required_action"]}
    groups = fetch(data_dir, f"SELECT kiosk_id, group_name FROM kiosk_groups{where}", args)
    for g in groups:
        k = kiosks.get(g["kiosk_id"])
        if k is not None and not k.get("group"):
            k["group"] = g["group_name"]  # the first group is enough for filtering and display
    return list(kiosks.values())


def all_kiosks(data_dir: Where) -> list[dict[str, Any]]:
    return _with_devices(data_dir, fetch(data_dir, "SELECT * FROM kiosks"))


def kiosks_changed(data_dir: Where, since: float) -> list[dict[str, Any]]:
    """Kiosks whose record or any device changed after ``since`` (controller clock)."""
    rows = fetch(data_dir, "SELECT * FROM kiosks WHERE last_seen > ? OR state_since > ? OR kiosk_id IN "
                           "(SELECT kiosk_id FROM devices WHERE updated_at > ?)", (since, since, since))
    if not rows and "devices" not in tables(data_dir):
        rows = fetch(data_dir, "SELECT * FROM kiosks WHERE last_seen > ? OR state_since > ?", (since, since))
    if not rows:
        return []
    if len(rows) > 500:  # a burst: read all devices once rather than a huge IN list
        return _with_devices(data_dir, rows)
    marks = ",".join("?" * len(rows))
    return _with_devices(data_dir, rows, f" WHERE kiosk_id IN ({marks})", tuple(r["kiosk_id"] for r in rows))
