"""Community notices shown on the kiosks (``svc_notices`` of the service backend): list, publish
(new or edited), withdraw.

The console shows exactly what the kiosks are served: it opens the table through the service
backend's own ``ensure_schema``, which seeds the service catalogue's default notices once, so the
defaults are listed (and can be edited or withdrawn) before any kiosk has asked for notices.
Notices are service content, not fleet state: the console writes them with a short transaction of
its own in the fleet database (``controller.fleet_db``; on SQLite serialised with the controller's
writes, ``busy_timeout`` waits for a lock; on PostgreSQL every instance serves the same notices).
Titles are required in every kiosk language so no resident sees an untranslated notice.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

from contract.catalogue import LANGS
from controller import sql_dialect
from controller.fleet_db import FleetDb
from controller.service_backend import ensure_schema
from controller.service_backend.operations import GROUPS
from controller.web import servicedb
from controller.web.auth import HTTPProblem
from controller.web.core_gateway import BadRequest, NotFound, Unavailable

_ID = re.compile(r"^[a-z0-9][a-z0-9_-]{0,47}$")


def validate(notice_id: str, titles: dict[str, str], groups: list[str]) -> tuple[str, dict[str, str], list[str]]:
    if not isinstance(notice_id, str) or not _ID.match(notice_id):
        raise BadRequest(f"notice id must be 1-48 lowercase letters, digits, '-' or '_', got {notice_id!r}")
    clean = {}
    for lang in LANGS:
        text = (titles or {}).get(lang)
        if not isinstance(text, str) or not text.strip():
            raise BadRequest(f"titles.{lang}: the {lang} title is missing")
        if len(text) > 200:
            raise BadRequest(f"titles.{lang}: at most 200 characters")
        clean[lang] = text.strip()
    if not groups:
        groups = ["all"]
    bad = [g for g in groups if g not in GROUPS]
    if bad:
        raise BadRequest(f"groups must be among {', '.join(GROUPS)}, got {', '.join(map(str, bad))}")
    return notice_id, clean, sorted(set(groups))


def _connect(where: FleetDb | Path | str) -> Any:
    try:
        conn = servicedb.open_db(where)
    except HTTPProblem as exc:
        raise Unavailable(exc.message) from None
    try:
        # The backend's tables, with the catalogue's default notices seeded once; a store where that
        # happened already is only read (no write lock per page view).
        if "svc_seeded" not in sql_dialect.tables(conn):
            ensure_schema(conn)
    except sql_dialect.all_errors() as exc:
        conn.close()
        raise Unavailable(f"the service tables cannot be opened: {exc}") from None
    return conn


def list_all(where: FleetDb | Path | str) -> list[dict[str, Any]]:
    """Every notice the kiosks are served, newest first; ``published`` 0 marks a catalogue default."""
    conn = _connect(where)
    try:
        rows = conn.execute("SELECT id, groups, titles, published FROM svc_notices "
                            "ORDER BY published DESC, id LIMIT 500").fetchall()
    finally:
        conn.close()
    out = []
    for nid, groups, titles, published in rows:
        try:
            g, t = json.loads(groups), json.loads(titles)
        except json.JSONDecodeError:
            g, t = [], {}
        out.append({"id": nid, "groups": g if isinstance(g, list) else [], "titles": t if isinstance(t, dict) else {},
                    "published": published})
    return out


def publish(where: FleetDb | Path | str, notice_id: str, titles: dict[str, str], groups: list[str], now: float) -> dict[str, Any]:
    notice_id, titles, groups = validate(notice_id, titles, groups)
    conn = _connect(where)
    try:
        with conn:
            conn.execute("INSERT INTO svc_notices (id, groups, titles, published) VALUES (?,?,?,?) "
                         "ON CONFLICT(id) DO UPDATE SET groups=excluded.groups, titles=excluded.titles, "
                         "published=excluded.published",
                         (notice_id, json.dumps(groups), json.dumps(titles, ensure_ascii=False), now))
    finally:
        conn.close()
    return {"id": notice_id, "titles": titles, "groups": groups, "published": now}


def withdraw(where: FleetDb | Path | str, notice_id: str) -> None:
    conn = _connect(where)
    try:
        with conn:
            if conn.execute("DELETE FROM svc_notices WHERE id=?", (notice_id,)).rowcount == 0:
                raise NotFound(f"no notice {notice_id!r}")
    finally:
        conn.close()
