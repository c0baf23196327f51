"""The fleet's one audit log: who did what to which target, when, with what result.

Every operator action lands in the controller store's ``audit`` table through :func:`write`:
the controller's own actions (alarm acknowledgements, config, commands, groups, sites), the
console's (sign-ins, accounts, tokens, notices, requests, queue calls, enrolment tokens) and
kioskctl's. ``kioskctl audit``, the console's audit page and its API read it with :func:`read`.
An action that the controller carries out is audited by the controller only, so one operator
action is one row. Stores from before this log kept the console's rows in ``console.sqlite3``;
:func:`adopt_console_rows` moves them here once.
"""

from __future__ import annotations

import json
import sqlite3
from typing import Any

MAX_RESULT = 300


def write(conn: sqlite3.Connection, *, user: str, action: str, target: str, detail: dict[str, Any] | None,
          result: str, now: float) -> None:
    """One row; ``result`` is ``ok`` or what went wrong (``error: ...``, ``rejected: ...``)."""
    # "user" quoted: a reserved word in PostgreSQL, where the fleet store may live (controller.store_pg).
    conn.execute('INSERT INTO audit (ts, "user", action, target, detail, result) VALUES (?,?,?,?,?,?)',
                 (now, user, action, target, json.dumps(detail or {}, ensure_ascii=False, default=str),
                  str(result)[:MAX_RESULT]))


def read(conn: sqlite3.Connection, *, user: str | None = None, action: str | None = None,
         target: str | None = None, offset: int = 0, limit: int = 100) -> dict[str, Any]:
    """Newest first (by time: rows adopted from the console's old table keep their times)."""
    where = [f'"{c}" = ?' for c, v in (("user", user), ("action", action), ("target", target)) if v]
    args = [v for v in (user, action, target) if v]
    cond = (" WHERE " + " AND ".join(where)) if where else ""
    total = conn.execute(f"SELECT COUNT(*) FROM audit{cond}", args).fetchone()[0]
    rows = conn.execute(f'SELECT id, ts, "user", action, target, detail, result FROM audit{cond} '
                        "ORDER BY ts DESC, id DESC LIMIT ? OFFSET ?", [*args, limit, offset]).fetchall()
    return {"total": total, "items": [{"id": r[0], "ts": r[1], "user": r[2], "action": r[3], "target": r[4],
                                       "detail": _detail(r[5]), "result": r[6]} for r in rows]}


def _detail(text: str | None) -> dict[str, Any]:
    try:
        value = json.loads(text or "{}")
    except json.JSONDecodeError:
        return {"text": text}
    return value if isinstance(value, dict) else {"value": value}


def adopt_console_rows(store: sqlite3.Connection, console: sqlite3.Connection) -> int:
    """Move the console's old ``audit`` rows (``actor``, no result) into the one log, then drop
    that table. Copying skips rows already here, so a crash between the two steps loses or
    doubles nothing; returns how many rows were moved."""
    if console.execute("SELECT 1 FROM sqlite_master WHERE type='table' AND name='audit'").fetchone() is None:
        return 0
    moved = 0
    rows = console.execute("SELECT ts, actor, action, target, detail FROM audit ORDER BY id").fetchall()
    # Row by row (the store's connection commits each): a row already copied is skipped, so a
    # crash part-way loses and doubles nothing, on SQLite as on PostgreSQL.
    for ts, actor, action, target, detail in rows:
        if store.execute('SELECT 1 FROM audit WHERE ts=? AND "user"=? AND action=? AND target=?',
                         (ts, actor, action, target)).fetchone():
            continue
        result = "failed" if action in ("login.failed", "login.locked") else "ok"
        store.execute('INSERT INTO audit (ts, "user", action, target, detail, result) VALUES (?,?,?,?,?,?)',
                      (ts, actor, action, target, detail or "{}", result))
        moved += 1
    with console:
        console.execute("DROP TABLE audit")
    return moved
