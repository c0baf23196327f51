"""Residents' requests (诉求, the service backend's ``svc_feedback``) for the staff who answer them.

At a kiosk a resident registers a category, a common problem of it, an urgency and, if they like, a
number to be called back on; the kiosk promises an answer within 1 working day (urgent) or 3 (normal). Here staff list
the requests by site, status and urgency, see which are past that promise, show a number to call
(operators and admins; the audit trail records who saw which request's number, never the number)
and mark a request handled with a short note.

Handling is the console's own record, in ``console_request_handling`` of the fleet database
(SQLite: created here on first use; PostgreSQL: with the service backend's tables, the
``service_backend`` track of ``controller.pg_parts``); ``svc_feedback`` is only read. Lists show numbers masked; the
controller blanks them after ``phone_retention_days``, and then says so instead of a number.
"""

from __future__ import annotations

import logging
import sqlite3
from collections.abc import Mapping
from dataclasses import asdict, dataclass
from datetime import datetime, timedelta, tzinfo
from typing import Any
from urllib.parse import urlencode

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from controller import fleet_clock, sql_dialect
from controller.fleet_clock import FleetClock
from controller.service_backend.operations import REPLY_DAYS, ServiceError
from controller.web import i18n, servicedb
from controller.web.auth import HTTPProblem, require
from foundation.logs import mask_phone
from foundation.settings import ControllerConfig

log = logging.getLogger(__name__)

HANDLING_TABLE = """CREATE TABLE IF NOT EXISTS console_request_handling (
    ref TEXT PRIMARY KEY, handled_by TEXT NOT NULL, handled_at REAL NOT NULL, note TEXT NOT NULL DEFAULT '')"""
STATUSES = ("open", "handled", "all")
URGENCIES = ("urgent", "normal")
# What the kiosk promises (controller.service_backend.operations.feedback_submit answers reply_days).
MAX_NOTE = 200
DEFAULT_LIMIT, MAX_LIMIT = 200, 1000
MAX_REF = 40
WRITERS = "operator"  # who may show numbers and mark requests handled


class FilterError(ValueError):
    """A list parameter is not valid; the message names it."""


@dataclass(frozen=True)
class Filters:
    site: str = ""
    status: str = "open"
    urgency: str = ""  # both
    limit: int = DEFAULT_LIMIT

    def query(self) -> str:
        """The query string that gives these filters back (forms post to it, to keep the view)."""
        return urlencode({k: v for k, v in asdict(self).items() if v and (k, v) != ("limit", DEFAULT_LIMIT)})


def parse_filters(params: Mapping[str, str]) -> Filters:
    site = (params.get("site") or "").strip()
    if len(site) > 64:
        raise FilterError("site must be at most 64 characters")
    status = params.get("status") or "open"
    if status not in STATUSES:
        raise FilterError(f"status must be open, handled or all, got {status!r}")
    urgency = params.get("urgency") or ""
    if urgency == "all":
        urgency = ""
    if urgency and urgency not in URGENCIES:
        raise FilterError(f"urgency must be urgent or normal (or all), got {urgency!r}")
    raw = params.get("limit") or str(DEFAULT_LIMIT)
    try:
        limit = int(raw)
    except ValueError:
        raise FilterError(f"limit must be an integer, got {raw!r}") from None
    if not 1 <= limit <= MAX_LIMIT:
        raise FilterError(f"limit must be between 1 and {MAX_LIMIT}, got {limit}")
    return Filters(site, status, urgency, limit)


def due_at(created: float, working_days: int, *, zone: tzinfo) -> float:
    """When an answer is due: ``working_days`` Monday-to-Friday days after ``created``, counted in
    ``zone`` (the fleet's, so the console's due date and the resident's receipt agree).

    A request made at the weekend counts from Monday 00:00. Public holidays and the weekends
    worked in their place are not known here, so they count as ordinary days.
    """
    day = datetime.fromtimestamp(created, zone)
    if day.weekday() >= 5:
        day = (day + timedelta(days=7 - day.weekday())).replace(hour=0, minute=0, second=0, microsecond=0)
    left = working_days
    while left > 0:
        day += timedelta(days=1)
        if day.weekday() < 5:
            left -= 1
    return day.timestamp()


def _prepare(conn: Any) -> None:
    if sql_dialect.name(conn) == sql_dialect.SQLITE:  # PostgreSQL's rows have names already
        conn.row_factory = sqlite3.Row
        conn.execute(HANDLING_TABLE)


SELECT = """SELECT f.ref, f.kiosk_id, COALESCE(k.site, '') AS site, f.category, f.problem, f.urgency,
       f.created, f.phone, h.handled_by, h.handled_at, h.note
FROM svc_feedback f LEFT JOIN kiosks k ON k.kiosk_id = f.kiosk_id
LEFT JOIN console_request_handling h ON h.ref = f.ref"""


def _item(row: Any, now: float, keep_days: float, zone: tzinfo) -> dict[str, Any]:
    created = row["created"]
    due = due_at(created, REPLY_DAYS.get(row["urgency"], max(REPLY_DAYS.values())), zone=zone)
    handled_at = row["handled_at"]
    phone = row["phone"] or ""
    if phone:
        phone_state = "kept"
    else:  # after the retention time nobody can tell (nor needs to) whether a number was given
        phone_state = "expired" if now - created >= keep_days * 86400 else "none"
    return {"ref": row["ref"], "kiosk_id": row["kiosk_id"], "site": row["site"], "category": row["category"],
            "problem": row["problem"], "urgency": row["urgency"], "created": created, "status": "open" if handled_at is None else "handled",
            "reply_days": REPLY_DAYS.get(row["urgency"]), "due_at": due,
            "overdue": (now if handled_at is None else handled_at) > due,
            "age_hours": round(max(now - created, 0) / 3600, 1),
            "phone": mask_phone(phone), "phone_state": phone_state,
            "handled_by": row["handled_by"], "handled_at": handled_at, "note": row["note"] or ""}


def list_requests(conn: Any, filters: Filters, *, now: float, keep_days: float) -> dict[str, Any]:
    """Requests matching the filters, urgent before normal, newest first; numbers masked."""
    _prepare(conn)
    where, args = ["1=1"], []
    if filters.site:
        where.append("k.site = ?")
        args.append(filters.site)
    if filters.urgency:
        where.append("f.urgency = ?")
        args.append(filters.urgency)
    if filters.status != "all":
        where.append("h.ref IS NULL" if filters.status == "open" else "h.ref IS NOT NULL")
    cond = " WHERE " + " AND ".join(where)
    total = conn.execute(f"SELECT COUNT(*) FROM ({SELECT}{cond}) AS matching", args).fetchone()[0]
    rows = conn.execute(f"{SELECT}{cond} ORDER BY f.urgency = 'urgent' DESC, f.created DESC, f.ref LIMIT ?",
                        [*args, filters.limit]).fetchall()
    zone = fleet_clock.recorded(conn).tz
    return {"items": [_item(r, now, keep_days, zone) for r in rows], "total": total, "filters": asdict(filters),
            "phone_retention_days": keep_days}


def _one(conn: Any, ref: str) -> Any:
    _prepare(conn)
    row = conn.execute(f"{SELECT} WHERE f.ref = ?", (ref,)).fetchone() if len(ref) <= MAX_REF else None
    if row is None:
        raise ServiceError("unknown_request", f"no request {ref[:MAX_REF]!r} (check the reference, e.g. F260312K7QD)")
    return row


def reveal(conn: Any, ref: str, *, now: float, keep_days: float,
           clock: FleetClock | None = None) -> dict[str, Any]:
    """The full call-back number of one request (the caller audits who saw it)."""
    row = _one(conn, ref)
    if not row["phone"]:
        if now - row["created"] >= keep_days * 86400:
            raise ServiceError("number_gone", f"request {ref}: number no longer kept after {keep_days:g} days "
                                              f"(made {(clock or FleetClock()).show(row['created'])})")
        raise ServiceError("no_number", f"request {ref}: the resident left no call-back number")
    return {"ref": ref, "phone": row["phone"], "kiosk_id": row["kiosk_id"], "site": row["site"]}


def clean_note(note: Any) -> str:
    if note is None:
        return ""
    if not isinstance(note, str):
        raise ServiceError("bad_request", f"note must be a string, got {type(note).__name__}")
    note = " ".join(note.split())  # one line: it is shown in a table cell and the audit trail
    if len(note) > MAX_NOTE:
        raise ServiceError("bad_request", f"note must be at most {MAX_NOTE} characters, got {len(note)}")
    if any(ord(c) < 32 or ord(c) == 127 for c in note):
        raise ServiceError("bad_request", "note must not contain control characters")
    return note


def mark_handled(conn: Any, ref: str, *, by: str, note: Any, now: float) -> dict[str, Any]:
    """Record that staff handled a request. Marking again keeps the first record (``repeated``)."""
    note = clean_note(note)
    _one(conn, ref)
    done = conn.execute("INSERT INTO console_request_handling (ref, handled_by, handled_at, note) VALUES (?,?,?,?) "
                        "ON CONFLICT(ref) DO NOTHING", (ref, by, now, note)).rowcount
    row = _one(conn, ref)
    return {"ref": ref, "status": "handled", "handled_by": row["handled_by"], "handled_at": row["handled_at"],
            "note": row["note"], "kiosk_id": row["kiosk_id"], "site": row["site"], "repeated": done == 0}


# -- the console's side: retention, audit, API and page -------------------------------------------

def keep_days(console) -> float:
    """The controller's ``phone_retention_days`` (its default when the console runs on its own)."""
    config = getattr(console.backend.controller, "config", None)
    return float(getattr(config, "phone_retention_days", ControllerConfig.phone_retention_days))


def do_list(console, filters: Filters) -> dict[str, Any]:
    return servicedb.run(console.db, list_requests, filters, now=console.clock(), keep_days=keep_days(console))


def do_reveal(console, who, ref: str) -> dict[str, Any]:
    got = servicedb.run(console.db, reveal, ref, now=console.clock(), keep_days=keep_days(console),
                       clock=console.clock_zone)
    console.accounts.audit(who.name, "request.reveal", f"request:{ref}",
                           {"kiosk_id": got["kiosk_id"], "site": got["site"]})
    log.info("call-back number shown", extra={"fields": {"ref": ref, "by": who.name}})
    return got


def do_handled(console, who, ref: str, note: Any) -> dict[str, Any]:
    got = servicedb.run(console.db, mark_handled, ref, by=who.name, note=note, now=console.clock())
    if not got["repeated"]:  # marking again changed nothing
        console.accounts.audit(who.name, "request.handled", f"request:{ref}",
                               {"kiosk_id": got["kiosk_id"], "site": got["site"], "note": got["note"]})
    return got


def _filters(request: Request) -> Filters:
    try:
        return parse_filters(request.query_params)
    except FilterError as exc:
        raise HTTPProblem(400, str(exc)) from None


NO_STORE = {"Cache-Control": "no-store"}  # a full number must not stay in a browser's or proxy's cache


async def api_list(request: Request) -> Response:
    from controller.web.api import ok

    require(request, "viewer")
    return ok(await run_in_threadpool(do_list, request.app.state.console, _filters(request)))


async def api_reveal(request: Request) -> Response:
    from controller.web.api import ok

    who = require(request, WRITERS)
    got = await run_in_threadpool(do_reveal, request.app.state.console, who, request.path_params["ref"])
    resp = ok({"ref": got["ref"], "phone": got["phone"]})
    resp.headers.update(NO_STORE)
    return resp


async def api_handled(request: Request) -> Response:
    from controller.web.api import body_json, ok

    who = require(request, WRITERS)
    body = await body_json(request) if request.headers.get("content-length", "0") != "0" else {}
    unknown = set(body) - {"note"}
    if unknown:
        raise HTTPProblem(422, f"unknown field(s) {', '.join(sorted(unknown))}; send note")
    got = await run_in_threadpool(do_handled, request.app.state.console, who, request.path_params["ref"],
                                  body.get("note"))
    return ok({k: v for k, v in got.items() if k not in ("kiosk_id", "site")})


async def page(request: Request) -> Response:
    request.state.who = who = require(request, "viewer")
    return await _show(request, who)


async def _show(request: Request, who, *, message: str = "", error: str = "", status: int = 200,
                revealed: dict[str, str] | None = None) -> Response:
    # A POST re-renders here after its own check (the CSRF token came in the form).
    from controller.web.app import render

    console = request.app.state.console
    try:
        filters = parse_filters(request.query_params)
    except FilterError as exc:
        filters, error, status = Filters(), str(exc), 400
    try:
        result = await run_in_threadpool(do_list, console, filters)
    except HTTPProblem as exc:
        result, error, status = None, error or exc.message, status if error else exc.status
    sites = sorted({s["site"] for s in console.fleet.sites() if s["site"]} | ({filters.site} - {""}))
    resp = render(request, "requests.html", {
        "filters": filters, "result": result, "sites": sites, "statuses": STATUSES, "urgencies": URGENCIES,
        "can_act": who.can(WRITERS), "revealed": revealed or {}, "message": message, "error": error,
        "qs": filters.query(), "keep_days": f"{keep_days(console):g}",
        "max_note": MAX_NOTE}, status)
    if revealed:
        resp.headers.update(NO_STORE)
    return resp


async def page_reveal(request: Request) -> Response:
    form = await request.form()
    request.state.who = who = require(request, WRITERS, form_csrf=str(form.get("csrf", "")))
    ref = request.path_params["ref"]
    try:
        got = await run_in_threadpool(do_reveal, request.app.state.console, who, ref)
    except HTTPProblem as exc:
        return await _show(request, who, error=exc.message, status=exc.status)
    return await _show(request, who, revealed={ref: got["phone"]})


async def page_handled(request: Request) -> Response:
    form = await request.form()
    request.state.who = who = require(request, WRITERS, form_csrf=str(form.get("csrf", "")))
    ref = request.path_params["ref"]
    t = i18n.for_request(request)
    try:
        got = await run_in_threadpool(do_handled, request.app.state.console, who, ref, str(form.get("note", "")))
    except HTTPProblem as exc:
        return await _show(request, who, error=exc.message, status=exc.status)
    message = (t("requests.already_handled", ref=ref, name=got["handled_by"]) if got["repeated"]
               else t("requests.marked", ref=ref))
    return await _show(request, who, message=message)


def api_routes() -> list[Route]:
    return [Route("/api/v1/requests", api_list, methods=["GET"]),
            Route("/api/v1/requests/{ref}/reveal", api_reveal, methods=["POST"]),
            Route("/api/v1/requests/{ref}/handled", api_handled, methods=["POST"])]


def routes() -> list[Route]:
    return [Route("/requests", page, methods=["GET"]),
            Route("/requests/{ref}/reveal", page_reveal, methods=["POST"]),
            Route("/requests/{ref}/handled", page_handled, methods=["POST"])]
