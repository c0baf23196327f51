"""Read-side queries over the controller's store, shared by the Controller API and ``kioskctl``.

Every function takes a connection (read-only is enough) and returns plain dicts/lists ready for
JSON. Listing functions return ``{"total": n, "items": [...]}`` for pagination.
"""

from __future__ import annotations

import json
import sqlite3
from typing import Any

from controller import config_layers, fleet_clock, sql_dialect
from controller.audit_log import read as read_audit
from controller.store import kiosk_row

AVAILABLE_DEVICE_STATES = ("idle", "busy", "ok", "ready")


def _page(conn: sqlite3.Connection, sql: str, where: list[str], args: list[Any], order: str,
          offset: int, limit: int) -> tuple[int, list[sqlite3.Row]]:
    cond = (" WHERE " + " AND ".join(where)) if where else ""
    total = conn.execute(f"SELECT COUNT(*) FROM ({sql}{cond}) AS page", args).fetchone()[0]
    rows = conn.execute(f"{sql}{cond} ORDER BY {order} LIMIT ? OFFSET ?", [*args, limit, offset]).fetchall()
    return total, rows


def _equal(**columns: Any) -> tuple[list[str], list[Any]]:
    """``column = ?`` conditions for the filters that are set (a falsy value means no filter)."""
    given = {c: v for c, v in columns.items() if v}
    # Quoted: ``user`` is a reserved word in PostgreSQL (unquoted it is the session's role).
    return [f'"{c}" = ?' for c in given], list(given.values())


def list_kiosks(conn: sqlite3.Connection, *, state: str | None = None, site: str | None = None,
                group: str | None = None, search: str | None = None, offset: int = 0,
                limit: int = 100) -> dict[str, Any]:
    where, args = _equal(state=state, site=site)
    if group:
        where.append("kiosk_id IN (SELECT kiosk_id FROM kiosk_groups WHERE group_name = ?)")
        args.append(group)
    if search:
        like = sql_dialect.like(conn)  # case-insensitive on both
        where.append(f"(kiosk_id {like} ? OR site {like} ?)")
        args += [f"%{search}%", f"%{search}%"]
    total, rows = _page(conn, "SELECT * FROM kiosks", where, args, "kiosk_id", offset, limit)
    return {"total": total, "items": [summary(kiosk_row(r)) for r in rows]}


def summary(k: dict[str, Any]) -> dict[str, Any]:
    online = k["state"] == "online"
    devices = {name: {**d, "available": online and d.get("state") in AVAILABLE_DEVICE_STATES}
               for name, d in (k.get("devices") or {}).items() if isinstance(d, dict)}
    return {"kiosk_id": k["kiosk_id"], "state": k["state"], "reason": k["reason"], "mode": k["mode"],
            "site": k["site"], "boot_id": k["boot_id"], "versions": k["versions"], "last_seen": k["last_seen"],
            "state_since": k["state_since"], "last_telemetry": k.get("last_telemetry", 0.0), "devices": devices}


def kiosk_detail(conn: sqlite3.Connection, kiosk_id: str) -> dict[str, Any] | None:
    row = conn.execute("SELECT * FROM kiosks WHERE kiosk_id = ?", (kiosk_id,)).fetchone()
    if row is None:
        return None
    k = kiosk_row(row)
    out = summary(k)
    out["telemetry"] = k.get("telemetry", {})
    out["groups"] = [r[0] for r in conn.execute("SELECT group_name FROM kiosk_groups WHERE kiosk_id=?",
                                                (kiosk_id,))]
    out["alarms"] = alarms(conn, active=True, kiosk_id=kiosk_id)["items"]
    out["events"] = events(conn, kiosk_id=kiosk_id, limit=20)["items"]
    out["commands"] = commands(conn, kiosk_id=kiosk_id, limit=20)["items"]
    out["config"] = config_layers.diff_for(layers(conn), k, time_zone=fleet_clock.recorded(conn).name)
    return out


def alarms(conn: sqlite3.Connection, *, active: bool | None = True, kiosk_id: str | None = None,
           severity: str | None = None, offset: int = 0, limit: int = 100) -> dict[str, Any]:
    where, args = _equal(kiosk_id=kiosk_id, severity=severity)
    if active is True:
        where.append("cleared_at IS NULL")
    elif active is False:
        where.append("cleared_at IS NOT NULL")
    order = "CASE severity WHEN 'critical' THEN 0 WHEN 'major' THEN 1 WHEN 'minor' THEN 2 ELSE 3 END, id DESC"
    total, rows = _page(conn, "SELECT * FROM alarms", where, args, order, offset, limit)
    return {"total": total, "items": [dict(r) for r in rows]}


def events(conn: sqlite3.Connection, *, kiosk_id: str | None = None, type: str | None = None,
           since: float | None = None, offset: int = 0, limit: int = 100) -> dict[str, Any]:
    where, args = _equal(kiosk_id=kiosk_id, type=type)
    if since is not None:
        where.append("received_at >= ?")
        args.append(since)
    total, rows = _page(conn, "SELECT * FROM events", where, args, "received_at DESC, seq DESC", offset, limit)
    return {"total": total, "items": [{**dict(r), "body": json.loads(r["body"])} for r in rows]}


def telemetry_history(conn: sqlite3.Connection, kiosk_id: str, *, since: float = 0.0,
                      until: float | None = None, limit: int = 2000) -> list[dict[str, Any]]:
    rows = conn.execute(
        "SELECT kiosk_id, ts, cpu, memory, disk, temperature, queue_depth FROM telemetry_history "
        "WHERE kiosk_id=? AND ts>=? AND ts<=? ORDER BY ts LIMIT ?",
        (kiosk_id, since, until if until is not None else 1e18, limit))
    return [dict(r) for r in rows]


def commands(conn: sqlite3.Connection, *, kiosk_id: str | None = None, status: str | None = None,
             offset: int = 0, limit: int = 100) -> dict[str, Any]:
    where, args = _equal(kiosk_id=kiosk_id, status=status)
    total, rows = _page(conn, "SELECT * FROM commands", where, args, "issued_at DESC", offset, limit)
    return {"total": total, "items": [command_row(r) for r in rows]}


def command(conn: sqlite3.Connection, command_id: str) -> dict[str, Any] | None:
    row = conn.execute("SELECT * FROM commands WHERE id=?", (command_id,)).fetchone()
    return command_row(row) if row else None


def command_row(r: sqlite3.Row) -> dict[str, Any]:
    d = dict(r)
    d["args"] = json.loads(d["args"])
    d["result"] = json.loads(d["result"]) if d.get("result") else None
    return d


def layers(conn: sqlite3.Connection) -> config_layers.Layers:
    return {r["scope"]: {"version": r["version"], "body": json.loads(r["body"]), "updated_at": r["updated_at"],
                         "updated_by": r["updated_by"]}
            for r in conn.execute("SELECT * FROM config_layers")}


def config_diff(conn: sqlite3.Connection, kiosk_id: str | None = None, *, only_out_of_sync: bool = False
                ) -> list[dict[str, Any]]:
    ls = layers(conn)
    rows = conn.execute("SELECT * FROM kiosks" + (" WHERE kiosk_id=?" if kiosk_id else "") + " ORDER BY kiosk_id",
                        (kiosk_id,) if kiosk_id else ())
    zone = fleet_clock.recorded(conn).name
    out = [config_layers.diff_for(ls, kiosk_row(r), time_zone=zone) for r in rows]
    return [d for d in out if not d["in_sync"]] if only_out_of_sync else out


def audit_log(conn: sqlite3.Connection, *, user: str | None = None, action: str | None = None,
              offset: int = 0, limit: int = 100) -> dict[str, Any]:
    return read_audit(conn, user=user, action=action, offset=offset, limit=limit)


def action(conn: sqlite3.Connection, action_id: int) -> dict[str, Any] | None:
    row = conn.execute("SELECT * FROM actions WHERE id=?", (action_id,)).fetchone()
    if row is None:
        return None
    d = dict(row)
    d["payload"] = json.loads(d["payload"])
    d["result"] = json.loads(d["result"]) if d.get("result") else None
    return d


def counters(conn: sqlite3.Connection) -> dict[str, int]:
    return {r["name"]: r["value"] for r in conn.execute("SELECT * FROM counters")}


def sites(conn: sqlite3.Connection) -> dict[str, Any]:
    """Every site, named in the ``sites`` table or by a kiosk's ``site``: its name and region (empty
    when never set), how many kiosks it has and how many of them are online. Ordered by site id;
    kiosks registered without a site appear under the site ``""``."""
    rows = conn.execute(
        """WITH counts AS (SELECT site, COUNT(*) AS kiosks, SUM(CASE WHEN state = 'online' THEN 1 ELSE 0 END) AS online
                          FROM kiosks GROUP BY site),
                ids AS (SELECT site FROM sites UNION SELECT site FROM counts)
           SELECT ids.site, COALESCE(s.name, '') AS name, COALESCE(s.region, '') AS region,
                  COALESCE(c.kiosks, 0) AS kiosks, COALESCE(c.online, 0) AS online
           FROM ids LEFT JOIN sites s ON s.site = ids.site LEFT JOIN counts c ON c.site = ids.site
           ORDER BY ids.site""").fetchall()
    return {"total": len(rows), "items": [dict(r) for r in rows]}
