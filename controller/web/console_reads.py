"""Read-only queries the console makes against the fleet store and the service backend's tables.

The console never writes the fleet controller's tables; it reads them through one read-only
connection per database. Tables that another part has not created yet read as empty, so the
console shows an empty state instead of failing.
"""

from __future__ import annotations

import json
import sqlite3
import threading
from pathlib import Path
from typing import Any

from controller.store import DB_NAME, connect

_conns: dict[str, tuple[sqlite3.Connection, threading.Lock]] = {}
_guard = threading.Lock()


def _conn(data_dir: Path) -> tuple[sqlite3.Connection, threading.Lock]:
    key = str(Path(data_dir).resolve())
    with _guard:
        if key not in _conns:
            _conns[key] = (connect(data_dir, readonly=True), threading.Lock())
        return _conns[key]


def close_all() -> None:
    with _guard:
        for conn, _ in _conns.values():
            conn.close()
        _conns.clear()


def fetch(data_dir: Path, sql: str, args: tuple | list = ()) -> list[dict[str, Any]]:
    if not (Path(data_dir) / DB_NAME).exists():
        return []
    conn, lock = _conn(data_dir)
    with lock:
        try:
            return [dict(r) for r in conn.execute(sql, args).fetchall()]
        except sqlite3.OperationalError as exc:
            if "no such table" in str(exc) or "no such column" in str(exc):
                return []
            raise


def tables(data_dir: Path) -> set[str]:
    return {r["name"] for r in fetch(data_dir, "SELECT name FROM sqlite_master WHERE type='table'")}


def columns(data_dir: Path, table: str) -> set[str]:
    if not table.replace("_", "").isalnum():
        raise ValueError(f"bad table name {table!r}")
    return {r["name"] for r in fetch(data_dir, f"PRAGMA table_info({table})")}


def _kiosk(row: dict[str, Any]) -> dict[str, Any]:
    for key in ("versions", "devices"):
        val = row.get(key)
        if isinstance(val, str):
            try:
                row[key] = json.loads(val)
            except json.JSONDecodeError:
                row[key] = {}
    return row


def _with_devices(data_dir: Path, rows: list[dict[str, Any]], where: str = "", args: tuple = ()) -> list[dict]:
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


def all_kiosks(data_dir: Path) -> list[dict[str, Any]]:
    return _with_devices(data_dir, fetch(data_dir, "SELECT * FROM kiosks"))


def kiosks_changed(data_dir: Path, since: float) -> list[dict[str, Any]]:
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
