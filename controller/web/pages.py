"""HTML pages of the console: sign-in, fleet overview, kiosk detail, alarms, audit log.

Pages render on the server (Jinja2); small scripts in ``static/console.js`` add live updates
and command buttons through the REST API, so the pages work without a front-end build.
"""

from __future__ import annotations

import functools
from urllib.parse import urlencode

import anyio
import anyio.to_thread
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response
from starlette.routing import Route

from controller.web import i18n
from controller.web.accounts import AuthFailed
from controller.web.api import call
from controller.web.auth import SESSION_COOKIE, HTTPProblem, require, same_origin
from controller.web.core_gateway import BUTTONS, Unavailable
from controller.web.fleetview import STATUSES, Query, QueryError, contract_reading, parse_query


def _console(request: Request):
    return request.app.state.console


def _render(request, name, ctx, status=200):
    from controller.web.app import render

    return render(request, name, ctx, status)


HASHING_THREADS = 2


def _hashing_limiter(request: Request) -> anyio.CapacityLimiter:
    state = request.app.state
    if getattr(state, "hashing", None) is None:
        state.hashing = anyio.CapacityLimiter(HASHING_THREADS)  # made on the loop, as anyio wants
    return state.hashing


def _safe_next(target: str | None) -> str:
    # Only local paths: an attacker's link must not bounce a fresh session to another site.
    if not target or not target.startswith("/") or target.startswith("//"):
        return "/fleet"
    return target


async def login_page(request: Request) -> Response:
    return _render(request, "login.html", {"error": "", "next": _safe_next(request.query_params.get("next"))})


async def login_submit(request: Request) -> Response:
    if not same_origin(request):
        raise HTTPProblem(403, "sign-in from another site refused", key="error.csrf")
    form = await request.form()
    name = str(form.get("name", ""))[:64]
    password = str(form.get("password", ""))[:1024]
    nxt = _safe_next(str(form.get("next", "")))
    console = _console(request)
    try:
        # scrypt takes ~50 ms of CPU and 16 MiB: on the event loop, 40 parallel sign-ins would stall
        # every page; in threads, at most HASHING_THREADS at once so the loop keeps a core.
        token, _ = await anyio.to_thread.run_sync(
            functools.partial(console.accounts.login, name, password,
                              source=request.client.host if request.client else ""),
            limiter=_hashing_limiter(request))
    except AuthFailed as exc:
        console.stats.logins["failed"] += 1
        t = i18n.for_request(request)
        return _render(request, "login.html", {"error": t("login.failed", why=str(exc)), "next": nxt}, 401)
    console.stats.logins["ok"] += 1
    resp = RedirectResponse(nxt, status_code=303)
    resp.set_cookie(SESSION_COOKIE, token, httponly=True, samesite="strict",
                    secure=request.url.scheme == "https", max_age=12 * 3600)
    return resp


async def logout(request: Request) -> Response:
    form = await request.form()
    who = require(request, "viewer", form_csrf=str(form.get("csrf", "")))
    _console(request).accounts.logout(request.cookies.get(SESSION_COOKIE, ""))
    _console(request).accounts.audit(who.name, "logout", who.name)
    resp = RedirectResponse("/login", status_code=303)
    resp.delete_cookie(SESSION_COOKIE)
    return resp


async def set_lang(request: Request) -> Response:
    lang = request.path_params["lang"]
    if lang not in i18n.LANGS:
        raise HTTPProblem(404, f"language must be one of {', '.join(i18n.LANGS)}")
    resp = RedirectResponse(_safe_next(request.query_params.get("next")), status_code=303)
    resp.set_cookie("lang", lang, max_age=365 * 86400, samesite="lax")
    return resp


async def home(request: Request) -> Response:
    return RedirectResponse("/fleet", status_code=303)


async def fleet_page(request: Request) -> Response:
    request.state.who = require(request, "viewer")
    console = _console(request)
    error = ""
    try:
        query = parse_query(dict(request.query_params))
    except QueryError as exc:
        query, error = Query(), str(exc)
    result = console.fleet.list(query)
    sites = console.fleet.sites()
    base = {k: v for k, v in (("q", query.q), ("status", query.status), ("site", query.site),
                              ("group", query.group), ("sort", query.sort), ("size", query.size)) if v}
    scope = {k: v for k, v in (("site", query.site), ("group", query.group)) if v}
    return _render(request, "fleet.html", {
        "query": query, "result": result, "statuses": STATUSES,
        "counts": console.fleet.counts(site=query.site, group=query.group),  # the tiles count what is filtered
        "sites": sites[:12], "all_sites": sorted(s["site"] for s in sites),
        "groups": console.fleet.groups(), "error": error,
        "page_url": lambda p: "/fleet?" + urlencode({**base, "page": p}),
        "status_url": lambda s: "/fleet?" + urlencode({**scope, **({"status": s} if s else {})}),
        "sort_url": lambda key: "/fleet?" + urlencode({**base, "sort": ("-" + key) if query.sort == key else key}),
    }, 400 if error else 200)


def _try(fn, *args, **kwargs):
    try:
        return fn(*args, **kwargs), ""
    except Unavailable as exc:
        return None, str(exc)


async def kiosk_page(request: Request) -> Response:
    request.state.who = who = require(request, "viewer")
    console = _console(request)
    kiosk_id = request.path_params["kiosk_id"]
    row = console.fleet.get(kiosk_id)
    if row is None:
        t = i18n.for_request(request)
        return _render(request, "error.html", {"message": t("kiosk.not_found", id=kiosk_id)}, 404)
    b = console.backend
    now = console.clock()
    events, events_err = _try(b.events, kiosk_id, limit=50)
    alarms, alarms_err = _try(b.alarms, active=None, kiosk_id=kiosk_id, limit=50)
    telemetry, tele_err = _try(b.telemetry, kiosk_id, since=now - 24 * 3600)
    config, config_err = _try(b.config_state, kiosk_id)
    commands, cmd_err = _try(b.commands, kiosk_id, limit=10)
    audit, audit_err = _try(b.audit, target=f"kiosk:{kiosk_id}", limit=30)
    audit = audit["items"] if audit else []
    latest, _ = _try(b.latest, kiosk_id)
    if b.controller is None:
        cmd_err = cmd_err or i18n.for_request(request)("cmd.no_controller")
    from controller.web import charts

    chart_svgs = charts.telemetry_charts(telemetry or [], console.clock_zone.hm, i18n.for_request(request))
    return _render(request, "kiosk.html", {
        "k": row, "contract": contract_reading(row.get("contract", "")), "latest": latest or {}, "events": events or [], "events_err": events_err, "alarms": alarms or [],
        "alarms_err": alarms_err, "charts": chart_svgs, "tele_err": tele_err,
        "config": config, "config_err": config_err, "commands": commands or [], "cmd_err": cmd_err,
        "buttons": [{"label": label, "name": name, "args": args} for label, name, args in BUTTONS],
        "can_command": who.can("operator"), "audit": audit or [], "audit_err": audit_err,
    })


async def alarms_page(request: Request) -> Response:
    request.state.who = who = require(request, "viewer")
    b = _console(request).backend
    active, err = _try(b.alarms, active=True)
    history, _ = _try(b.alarms, active=False, limit=100)
    return _render(request, "alarms.html", {"active": active or [], "history": history or [],
                                            "err": err, "can_ack": who.can("operator")})


async def alarm_ack_form(request: Request) -> Response:
    form = await request.form()
    who = require(request, "operator", form_csrf=str(form.get("csrf", "")))
    console = _console(request)
    alarm_id = request.path_params["alarm_id"]
    note = str(form.get("note", ""))[:500]
    call(console.backend.ack_alarm, alarm_id, who.name, note)  # the controller audits it, note included
    console.hub.publish("alarms", {"acked": alarm_id})
    return RedirectResponse(_safe_next(str(form.get("next", "/alarms"))), status_code=303)


AUDIT_PAGE = 100


async def audit_page(request: Request) -> Response:
    request.state.who = require(request, "viewer")
    raw = request.query_params.get("offset")
    console = _console(request)
    offset = int(raw) if raw is not None and raw.isdigit() else 0
    page = console.accounts.audit_trail(limit=AUDIT_PAGE, offset=offset)
    return _render(request, "audit.html", {"page": page, "offset": offset, "size": AUDIT_PAGE})


def routes() -> list[Route]:
    from controller.web import enrol_tokens, pages_accounts, pages_admin, queue_page, resident_requests

    return [
        Route("/", home),
        Route("/login", login_page, methods=["GET"]),
        Route("/login", login_submit, methods=["POST"]),
        Route("/logout", logout, methods=["POST"]),
        Route("/lang/{lang}", set_lang),
        Route("/fleet", fleet_page, name="fleet"),
        Route("/kiosks/{kiosk_id}", kiosk_page, name="kiosk"),
        Route("/alarms", alarms_page, name="alarms"),
        Route("/alarms/{alarm_id}/ack", alarm_ack_form, methods=["POST"]),
        Route("/audit", audit_page, name="audit"),
        *pages_admin.routes(),
        *pages_accounts.routes(),
        *queue_page.routes(),
        *resident_requests.routes(),
        *enrol_tokens.routes(),
    ]
