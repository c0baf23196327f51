"""Enrolment tokens from the console: admins issue one-time tokens for new kiosks (page, REST API).

``POST /api/v1/enrolment-tokens`` and the form on ``/enrolment`` call
:func:`controller.enrolment_service.issue_token` on the controller database, like ``kioskctl token issue``.
The token is in that one answer only (the database keeps its SHA-256); it never goes to the
log or the audit trail. The list shows site, kiosk, expiry and use, never a token.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from controller import enrolment_service
from controller.web import i18n
from controller.web.auth import HTTPProblem, require
from controller.web.console_reads import fetch, tables
from foundation.errors import ConfigError, KioskError

log = logging.getLogger(__name__)
LIST_LIMIT = 200


def ca_fingerprint(console) -> str:
    """The fleet CA's fingerprint the technician pins, when the console knows the fleet folder."""
    from controller.ctl_tokens import _ca_fingerprint

    fleet_dir = getattr(console, "fleet_dir", None)
    return _ca_fingerprint(Path(fleet_dir) / "ca" / "ca.crt.pem") if fleet_dir else ""


def issue(console, who, site: Any, kiosk_id: Any = None, ttl: Any = None) -> dict[str, Any]:
    """Validate, issue, audit (without the token); raises HTTPProblem naming the wrong field."""
    if not isinstance(site, str) or not site.strip() or len(site) > 64:
        raise HTTPProblem(422, "site must be a non-empty string of at most 64 characters")
    if kiosk_id is not None and not isinstance(kiosk_id, str):
        raise HTTPProblem(422, "kiosk_id must be a string")
    if ttl is None:
        ttl = enrolment_service.DEFAULT_TTL
    if isinstance(ttl, bool) or not isinstance(ttl, int | float):
        raise HTTPProblem(422, f"ttl must be a number of seconds, got {ttl!r}")
    try:
        conn = console.db.open_migrated()  # tokens may be issued before the controller's first start
    except KioskError as exc:
        raise HTTPProblem(503, str(exc)) from None
    try:
        tok = enrolment_service.issue_token(conn, site.strip(), kiosk_id=(kiosk_id or "").strip() or None, ttl=float(ttl),
                                    now=console.clock(), issued_by=f"console:{who.name}")
    except ConfigError as exc:
        raise HTTPProblem(422, str(exc)) from None
    except KioskError as exc:
        raise HTTPProblem(503, str(exc)) from None
    finally:
        conn.close()
    console.accounts.audit(who.name, "enrolment_token.issue", f"site:{tok['site']}",
                           {"kiosk_id": tok["kiosk_id"], "expires_at": tok["expires_at"],
                            "token": enrolment_service.token_hash(tok["token"])[:8]})
    return {**tok, "ca_hash": ca_fingerprint(console)}


def outstanding(console) -> list[dict[str, Any]]:
    """Newest tokens first, with their state; the hash prefix only tells two tokens apart."""
    if "enrol_tokens" not in tables(console.db):
        return []
    now = console.clock()
    rows = fetch(console.db, "SELECT substr(token_hash, 1, 8) AS ref, site, kiosk_id, issued_at, expires_at, "
                                   "issued_by, used_at, used_by FROM enrol_tokens ORDER BY issued_at DESC LIMIT ?",
                 [LIST_LIMIT])
    for r in rows:
        r["state"] = "used" if r["used_at"] is not None else ("expired" if now > r["expires_at"] else "unused")
    return rows


async def api_issue(request: Request) -> Response:
    from controller.web.api import body_json, ok

    who = require(request, "admin")
    body = await body_json(request)
    unknown = set(body) - {"site", "kiosk_id", "ttl"}
    if unknown:
        raise HTTPProblem(422, f"unknown field(s) {', '.join(sorted(unknown))}; send site, kiosk_id and ttl")
    console = request.app.state.console
    tok = await run_in_threadpool(issue, console, who, body.get("site"), body.get("kiosk_id"), body.get("ttl"))
    return ok(tok, 201)


async def api_list(request: Request) -> Response:
    from controller.web.api import ok

    require(request, "admin")
    return ok({"items": await run_in_threadpool(outstanding, request.app.state.console)})


async def page(request: Request) -> Response:
    request.state.who = who = require(request, "admin")
    return _show(request, who)


def _show(request: Request, who, *, new: dict | None = None, error: str = "", form: dict | None = None,
          status: int = 200) -> Response:
    from controller.web.app import render

    console = request.app.state.console
    return render(request, "enrolment.html", {
        "tokens": outstanding(console), "new": new, "error": error, "form": form or {},
        "default_ttl": enrolment_service.DEFAULT_TTL // 60}, status)


async def submit(request: Request) -> Response:
    form = await request.form()
    request.state.who = who = require(request, "admin", form_csrf=str(form.get("csrf", "")))
    console = request.app.state.console
    values = {k: str(form.get(k, "")).strip() for k in ("site", "kiosk_id", "ttl_minutes")}
    try:
        minutes = float(values["ttl_minutes"] or enrolment_service.DEFAULT_TTL / 60)
    except ValueError:
        t = i18n.for_request(request)
        return _show(request, who, error=f"{t('enrol.ttl')}: {values['ttl_minutes']!r}", form=values, status=422)
    try:
        tok = await run_in_threadpool(issue, console, who, values["site"], values["kiosk_id"] or None, minutes * 60)
    except HTTPProblem as exc:
        return _show(request, who, error=exc.message, form=values, status=exc.status)
    return _show(request, who, new=tok)


def api_routes() -> list[Route]:
    return [Route("/api/v1/enrolment-tokens", api_issue, methods=["POST"]),
            Route("/api/v1/enrolment-tokens", api_list, methods=["GET"])]


def routes() -> list[Route]:
    return [Route("/enrolment", page, methods=["GET"]), Route("/enrolment", submit, methods=["POST"])]
