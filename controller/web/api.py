"""JSON REST API under ``/api/v1/`` for integrators and the console's own scripts.

Every error is a 4xx JSON ``{"error": "..."}`` naming what was wrong; roles: viewer reads,
operator acts (commands, alarm acknowledgement), admin changes config and catalogue.
"""

from __future__ import annotations

import json
from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from controller.web.auth import HTTPProblem, require
from controller.web.core_gateway import COMMANDS, LAYERS, BadRequest, NotFound, Unavailable
from controller.web.fleetview import QueryError, parse_query

MAX_BODY = 64 * 1024


def _console(request: Request):
    return request.app.state.console


def ok(data: Any, status: int = 200) -> JSONResponse:
    return JSONResponse(data, status_code=status)


async def body_json(request: Request) -> dict[str, Any]:
    ctype = request.headers.get("content-type", "").split(";")[0].strip()
    if ctype != "application/json":
        raise HTTPProblem(415, "send the body as application/json")
    raw = await request.body()
    if len(raw) > MAX_BODY:
        raise HTTPProblem(413, f"body larger than {MAX_BODY} bytes")
    try:
        data = json.loads(raw.decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise HTTPProblem(400, f"body is not valid UTF-8 JSON: {exc}") from None
    if not isinstance(data, dict):
        raise HTTPProblem(400, "body must be a JSON object")
    return data


def call(fn, *args, **kwargs):
    """Map the backend's errors to HTTP answers."""
    try:
        return fn(*args, **kwargs)
    except NotFound as exc:
        raise HTTPProblem(404, str(exc)) from None
    except BadRequest as exc:
        raise HTTPProblem(422, str(exc)) from None
    except Unavailable as exc:
        raise HTTPProblem(503, str(exc)) from None


async def summary(request: Request) -> Response:
    require(request, "viewer")
    fleet = _console(request).fleet
    site, group = request.query_params.get("site", ""), request.query_params.get("group", "")
    return ok({"counts": fleet.counts(site=site, group=group), "sites": len(fleet.sites())})


async def kiosks(request: Request) -> Response:
    require(request, "viewer")
    try:
        query = parse_query(dict(request.query_params))
    except QueryError as exc:
        raise HTTPProblem(400, str(exc)) from None
    return ok(_console(request).fleet.list(query))


async def sites(request: Request) -> Response:
    require(request, "viewer")
    return ok({"items": _console(request).fleet.sites()})


async def kiosk(request: Request) -> Response:
    require(request, "viewer")
    kiosk_id = request.path_params["kiosk_id"]
    row = _console(request).fleet.get(kiosk_id)
    if row is None:
        raise HTTPProblem(404, f"no kiosk {kiosk_id!r}")
    return ok(row)


def _known_kiosk(request: Request) -> str:
    kiosk_id = request.path_params["kiosk_id"]
    if _console(request).fleet.get(kiosk_id) is None:
        raise HTTPProblem(404, f"no kiosk {kiosk_id!r}")
    return kiosk_id


async def kiosk_events(request: Request) -> Response:
    require(request, "viewer")
    kiosk_id = _known_kiosk(request)
    return ok({"items": call(_console(request).backend.events, kiosk_id, limit=_int(request, "limit", 50, 1, 1000))})


async def kiosk_telemetry(request: Request) -> Response:
    require(request, "viewer")
    kiosk_id = _known_kiosk(request)
    hours = _int(request, "hours", 24, 1, 24 * 31)
    since = _console(request).clock() - hours * 3600
    return ok({"items": call(_console(request).backend.telemetry, kiosk_id, since=since)})


def _int(request: Request, name: str, default: int, lo: int, hi: int) -> int:
    raw = request.query_params.get(name)
    if raw is None or raw == "":
        return default
    try:
        val = int(raw)
    except ValueError:
        raise HTTPProblem(400, f"{name} must be an integer, got {raw!r}") from None
    if not lo <= val <= hi:
        raise HTTPProblem(400, f"{name} must be between {lo} and {hi}, got {val}")
    return val


async def send_command(request: Request) -> Response:
    who = require(request, "operator")
    kiosk_id = _known_kiosk(request)
    body = await body_json(request)
    name = body.get("name")
    if name not in COMMANDS:
        raise HTTPProblem(422, f"name must be one of {', '.join(COMMANDS)}, got {name!r}")
    unknown = set(body) - {"name", "args"}
    if unknown:
        raise HTTPProblem(422, f"unknown field(s) {', '.join(sorted(unknown))}; send name and args")
    args = body.get("args", {})
    if not isinstance(args, dict):
        raise HTTPProblem(422, "args must be a JSON object")
    console = _console(request)
    try:
        command_id = call(console.backend.send_command, kiosk_id, name, args, who.name)
    except HTTPProblem:
        console.stats.commands[(name, "refused")] += 1
        raise
    console.stats.commands[(name, "sent")] += 1  # the controller audits command.send (one row per action)
    return ok({"id": command_id, "kiosk_id": kiosk_id, "name": name, "status": "sent"}, 202)


async def command_status(request: Request) -> Response:
    require(request, "viewer")
    return ok(call(_console(request).backend.command, request.path_params["command_id"]))


async def kiosk_commands(request: Request) -> Response:
    require(request, "viewer")
    kiosk_id = _known_kiosk(request)
    return ok({"items": call(_console(request).backend.commands, kiosk_id, limit=_int(request, "limit", 20, 1, 500))})


async def alarms(request: Request) -> Response:
    require(request, "viewer")
    state = request.query_params.get("state", "active")
    if state not in ("active", "all"):
        raise HTTPProblem(400, f"state must be active or all, got {state!r}")
    kiosk_id = request.query_params.get("kiosk_id") or None
    items = call(_console(request).backend.alarms, active=True if state == "active" else None, kiosk_id=kiosk_id,
                 limit=_int(request, "limit", 200, 1, 5000))
    return ok({"items": items})


async def ack_alarm(request: Request) -> Response:
    who = require(request, "operator")
    body = await body_json(request) if request.headers.get("content-length", "0") != "0" else {}
    note = body.get("note", "")
    if not isinstance(note, str) or len(note) > 500:
        raise HTTPProblem(422, "note must be a string of at most 500 characters")
    alarm_id = request.path_params["alarm_id"]
    result = call(_console(request).backend.ack_alarm, alarm_id, who.name, note)
    _console(request).hub.publish("alarms", {"acked": result["id"]})  # the controller audited it, note included
    return ok(result)


def _layer(request: Request) -> tuple[str, str]:
    layer = request.path_params["layer"]
    if layer not in LAYERS:
        raise HTTPProblem(404, f"layer must be one of {', '.join(LAYERS)}, got {layer!r}")
    target = request.path_params.get("target", "")
    if layer == "fleet":
        target = ""
    elif not target:
        raise HTTPProblem(400, f"the {layer} layer needs a target: /api/v1/config/{layer}/{{id}}")
    return layer, target


async def config_get(request: Request) -> Response:
    require(request, "viewer")
    layer, target = _layer(request)
    return ok(call(_console(request).backend.config_get, layer, target))


async def config_put(request: Request) -> Response:
    who = require(request, "admin")
    layer, target = _layer(request)
    body = await body_json(request)
    values = body.get("values")
    if not isinstance(values, dict):
        raise HTTPProblem(422, "values must be a JSON object of settings")
    dry_run = bool(body.get("dry_run", False))
    from controller.web import configedit

    console = _console(request)
    current = call(console.backend.config_get, layer, target).get("values", {})
    diff = configedit.diff(current, values)
    call(console.backend.config_validate, values)
    if dry_run:
        return ok({"diff": diff, "applied": False})
    result = call(console.backend.config_set, layer, target, values, who.name)  # audited by the controller
    return ok({"diff": diff, "applied": True, **result})


async def audit(request: Request) -> Response:
    require(request, "viewer")
    target = request.query_params.get("target")
    page = _console(request).accounts.audit_trail(target=target, limit=_int(request, "limit", 100, 1, 1000),
                                                  offset=_int(request, "offset", 0, 0, 10**9))
    return ok(page)


async def reports(request: Request) -> Response:
    require(request, "viewer")
    from controller.web import reports as rep

    console = _console(request)
    try:
        period = rep.parse_period(dict(request.query_params), console.clock())
    except rep.PeriodError as exc:
        raise HTTPProblem(400, str(exc)) from None
    return ok(rep.build(console, period))


async def not_found(request: Request) -> Response:
    raise HTTPProblem(404, f"no API endpoint {request.method} {request.url.path}; see /openapi.json")


def routes() -> list[Route]:
    from controller.web import enrol_tokens, queue_page, resident_requests

    p = "/api/v1"
    return [
        Route(f"{p}/summary", summary),
        Route(f"{p}/kiosks", kiosks),
        Route(f"{p}/sites", sites),
        Route(f"{p}/kiosks/{{kiosk_id}}", kiosk),
        Route(f"{p}/kiosks/{{kiosk_id}}/events", kiosk_events),
        Route(f"{p}/kiosks/{{kiosk_id}}/telemetry", kiosk_telemetry),
        Route(f"{p}/kiosks/{{kiosk_id}}/commands", send_command, methods=["POST"]),
        Route(f"{p}/kiosks/{{kiosk_id}}/commands", kiosk_commands, methods=["GET"]),
        Route(f"{p}/commands/{{command_id}}", command_status),
        Route(f"{p}/alarms", alarms),
        Route(f"{p}/alarms/{{alarm_id}}/ack", ack_alarm, methods=["POST"]),
        Route(f"{p}/config/{{layer}}", config_get, methods=["GET"]),
        Route(f"{p}/config/{{layer}}", config_put, methods=["PUT"]),
        Route(f"{p}/config/{{layer}}/{{target}}", config_get, methods=["GET"]),
        Route(f"{p}/config/{{layer}}/{{target}}", config_put, methods=["PUT"]),
        Route(f"{p}/audit", audit),
        Route(f"{p}/reports", reports),
        *queue_page.api_routes(),  # sites/{site}/queue[/next]
        *enrol_tokens.api_routes(),  # enrolment-tokens
        *resident_requests.api_routes(),  # requests, requests/{ref}/reveal, requests/{ref}/handled
        Route(p + "/{rest:path}", not_found, methods=["GET", "POST", "PUT", "DELETE", "PATCH"]),
    ]
