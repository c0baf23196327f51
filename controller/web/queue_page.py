"""Queue at a community centre's window: staff call the next ticket (page, REST API).

``POST /api/v1/sites/{site}/queue/next`` (operator) and the button on ``/sites/{site}/queue``
call :func:`controller.service_backend.queue_calls.call_next` on the controller database. The console writes
the service backend's tables with short transactions of its own (:mod:`controller.web.servicedb`).
A request id (the form's hidden ``request_id``, the API's ``request_id`` or ``Idempotency-Key``)
makes a repeated call return the same ticket instead of calling a second resident.
"""

from __future__ import annotations

import logging
import secrets
from typing import Any

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from controller.service_backend import queue_calls
from controller.service_backend.operations import COUNTER_PREFIX
from controller.web import i18n, servicedb
from controller.web.auth import HTTPProblem, require

log = logging.getLogger(__name__)


def do_call_next(console, site: str, who, *, counter: str | None, request_ref: str | None) -> dict[str, Any]:
    ticket = servicedb.run(console.db, queue_calls.call_next, site, now=console.clock(), called_by=who.name,
                           counter=counter, request_ref=request_ref)
    audit_call(console.accounts, who.name, site, ticket)
    return ticket


def audit_call(accounts, user: str, site: str, ticket: dict[str, Any], **detail: Any) -> None:
    """Record a call in the console's audit trail and the log (also ``kioskctl queue next``).
    A repeated request called nobody, so it is not recorded again."""
    if ticket["repeated"]:
        return
    accounts.audit(user, "queue.call_next", f"site:{site}",
                   {"number": ticket["number"], "counter": ticket["counter"], "wait_minutes": ticket["wait_minutes"],
                    **detail})
    log.info("ticket called", extra={"fields": {"site": site, "number": ticket["number"], "by": user}})


async def api_call_next(request: Request) -> Response:
    from controller.web.api import body_json, ok

    who = require(request, "operator")
    site = request.path_params["site"]
    has_body = request.headers.get("content-length", "0") != "0"
    body = await body_json(request) if has_body else {}
    unknown = set(body) - {"counter", "request_id"}
    if unknown:
        raise HTTPProblem(422, f"unknown field(s) {', '.join(sorted(unknown))}; send counter and request_id")
    counter = body.get("counter") or None
    if counter is not None and counter not in COUNTER_PREFIX:
        raise HTTPProblem(422, f"counter must be one of {', '.join(COUNTER_PREFIX)}, got {counter!r}")
    ref = body.get("request_id") or request.headers.get("idempotency-key") or None
    if ref is not None and (not isinstance(ref, str) or len(ref) > queue_calls.MAX_REF):
        raise HTTPProblem(422, f"request_id must be a string of at most {queue_calls.MAX_REF} characters")
    console = request.app.state.console
    ticket = await run_in_threadpool(do_call_next, console, site, who, counter=counter,
                                     request_ref=f"api:{who.name}:{ref}" if ref else None)
    return ok(ticket)


async def api_queue(request: Request) -> Response:
    from controller.web.api import ok

    require(request, "viewer")
    console = request.app.state.console
    return ok(await run_in_threadpool(servicedb.run, console.db, queue_calls.site_queue,
                                      request.path_params["site"], now=console.clock()))


async def queue_page(request: Request) -> Response:
    request.state.who = who = require(request, "viewer")
    return await _show(request, who)


async def _show(request: Request, who, *, message: str = "", error: str = "", status: int = 200) -> Response:
    # The caller is already checked (a POST re-renders with the form's CSRF token, not a header).
    from controller.web.app import render

    console = request.app.state.console
    site = request.path_params["site"]
    try:
        q = await run_in_threadpool(servicedb.run, console.db, queue_calls.site_queue, site, now=console.clock())
    except HTTPProblem as exc:
        q, error, status = None, error or exc.message, status if error else exc.status
    return render(request, "queue.html", {
        "site": site, "q": q, "message": message, "error": error, "can_call": who.can("operator"),
        "request_id": secrets.token_urlsafe(12), "counters": list(COUNTER_PREFIX)}, status)


async def queue_submit(request: Request) -> Response:
    form = await request.form()
    request.state.who = who = require(request, "operator", form_csrf=str(form.get("csrf", "")))
    console = request.app.state.console
    site = request.path_params["site"]
    t = i18n.for_request(request)
    counter = str(form.get("counter", "")) or None
    ref = str(form.get("request_id", "")) or None
    try:
        ticket = await run_in_threadpool(do_call_next, console, site, who, counter=counter,
                                         request_ref=f"form:{who.name}:{ref}" if ref else None)
    except HTTPProblem as exc:
        msg = t("queue.empty") if exc.status == 409 else exc.message
        return await _show(request, who, error=msg, status=exc.status)
    return await _show(request, who, message=t("queue.called", number=ticket["number"],
                                               counter=t(f"queue.counter.{ticket['counter']}"),
                                               minutes=ticket["wait_minutes"]))


def api_routes() -> list[Route]:
    return [Route("/api/v1/sites/{site}/queue/next", api_call_next, methods=["POST"]),
            Route("/api/v1/sites/{site}/queue", api_queue, methods=["GET"])]


def routes() -> list[Route]:
    return [Route("/sites/{site}/queue", queue_page, methods=["GET"]),
            Route("/sites/{site}/queue", queue_submit, methods=["POST"])]
