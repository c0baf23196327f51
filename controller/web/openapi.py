"""The OpenAPI 3.1 description of ``/api/v1/`` served at ``/openapi.json`` for integrators."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import JSONResponse

from controller.service_backend.operations import COUNTER_PREFIX
from controller.web import rollout_api
from controller.web.core_gateway import COMMANDS, LAYERS
from controller.web.fleetview import MAX_PAGE_SIZE, SORTS, STATUSES
from controller.web.resident_requests import MAX_LIMIT, MAX_NOTE, URGENCIES
from controller.web.resident_requests import STATUSES as REQUEST_STATUSES

_ERR = {"description": "error", "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}}}


def _op(summary: str, role: str, *, params=(), body=None, ok="OK", status="200", errors=()) -> dict:
    op = {"summary": summary, "description": f"Requires role **{role}** or higher.",
          "parameters": list(params),
          "responses": {status: {"description": ok, "content": {"application/json": {"schema": {"type": "object"}}}},
                        **dict.fromkeys(("400", "401", "403", "404", *errors, "422", "503"), _ERR)}}
    if body:
        op["requestBody"] = {"required": True, "content": {"application/json": {"schema": body}}}
    return op


def _q(name: str, schema: dict, desc: str) -> dict:
    return {"name": name, "in": "query", "required": False, "schema": schema, "description": desc}


def _p(name: str, desc: str) -> dict:
    return {"name": name, "in": "path", "required": True, "schema": {"type": "string"}, "description": desc}


KIOSK = _p("kiosk_id", "kiosk id")
REF = _p("ref", "the request's reference as the kiosk gave it to the resident (F + yymmdd + 4 characters)")
SITE = _p("site", "site (community) id")
IDEMPOTENCY = {"name": "Idempotency-Key", "in": "header", "required": False, "schema": {"type": "string"},
               "description": "same as request_id in the body"}
LIST_PARAMS = [
    _q("q", {"type": "string", "maxLength": 100}, "search in kiosk id, site and reason"),
    _q("status", {"type": "string", "enum": list(STATUSES)}, "console status"),
    _q("site", {"type": "string"}, "exact site"),
    _q("group", {"type": "string"}, "exact group"),
    _q("sort", {"type": "string", "enum": [*SORTS, *("-" + s for s in SORTS)]}, "sort key, - for descending"),
    _q("page", {"type": "integer", "minimum": 1}, "page number from 1"),
    _q("size", {"type": "integer", "minimum": 1, "maximum": MAX_PAGE_SIZE}, "page size"),
]


def spec() -> dict:
    layer = {"name": "layer", "in": "path", "required": True, "schema": {"type": "string", "enum": list(LAYERS)}}
    config_body = {"type": "object", "required": ["values"], "properties": {
        "values": {"type": "object"}, "dry_run": {"type": "boolean", "description": "only return the diff"}}}
    return {
        "openapi": "3.1.0",
        "info": {"title": "Kiosk fleet console API", "version": "1.0.0",
                 "description": "Fleet registry, alarms, commands, config layers, audit, reports, queue and "
                                "residents' requests. "
                                "Authenticate with `Authorization: Bearer kt_...` (create tokens with "
                                "`kioskctl token create NAME --role viewer|operator|admin`). Errors are "
                                "`{\"error\": \"...\"}` with a 4xx status."},
        "components": {
            "securitySchemes": {"token": {"type": "http", "scheme": "bearer"}},
            "schemas": {"Error": {"type": "object", "properties": {"error": {"type": "string"}}}},
        },
        "security": [{"token": []}],
        "paths": {
            "/api/v1/summary": {"get": _op("Kiosk counts by console status (of one site or group if given)", "viewer",
                                           params=[_q("site", {"type": "string"}, "count this site only"),
                                                   _q("group", {"type": "string"}, "count this group only")])},
            "/api/v1/kiosks": {"get": _op("List kiosks with filters and pagination", "viewer", params=LIST_PARAMS)},
            "/api/v1/sites": {"get": _op("Counts by status per site, worst first", "viewer")},
            "/api/v1/kiosks/{kiosk_id}": {"get": _op("One kiosk with devices, required actions and the "
                                                         "contract version its latest birth announced", "viewer",
                                                         params=[KIOSK])},
            "/api/v1/kiosks/{kiosk_id}/events": {"get": _op("Recent events of a kiosk", "viewer", params=[
                KIOSK, _q("limit", {"type": "integer", "minimum": 1, "maximum": 1000}, "how many")])},
            "/api/v1/kiosks/{kiosk_id}/telemetry": {"get": _op("Telemetry history", "viewer", params=[
                KIOSK, _q("hours", {"type": "integer", "minimum": 1}, "how far back")])},
            "/api/v1/kiosks/{kiosk_id}/commands": {
                "post": _op("Send a signed command to a kiosk", "operator", params=[KIOSK], status="202",
                            ok="accepted; poll /api/v1/commands/{id}",
                            body={"type": "object", "required": ["name"], "properties": {
                                "name": {"type": "string", "enum": list(COMMANDS)}, "args": {"type": "object"}}}),
                "get": _op("Recent commands of a kiosk", "viewer", params=[KIOSK]),
            },
            "/api/v1/commands/{command_id}": {"get": _op("Command status and result", "viewer",
                                                         params=[_p("command_id", "command id")])},
            "/api/v1/alarms": {"get": _op("Alarms", "viewer", params=[
                _q("state", {"type": "string", "enum": ["active", "all"]}, "active (default) or all"),
                _q("kiosk_id", {"type": "string"}, "one kiosk")])},
            "/api/v1/alarms/{alarm_id}/ack": {"post": _op("Acknowledge an alarm", "operator",
                                                          params=[_p("alarm_id", "alarm id")],
                                                          body={"type": "object", "properties": {
                                                              "note": {"type": "string", "maxLength": 500}}})},
            "/api/v1/config/{layer}": {"get": _op("Fleet config layer", "viewer", params=[layer]),
                                       "put": _op("Replace the fleet layer (diff returned)", "admin",
                                                  params=[layer], body=config_body)},
            "/api/v1/config/{layer}/{target}": {
                "get": _op("Site or kiosk config layer", "viewer", params=[layer, _p("target", "site or kiosk id")]),
                "put": _op("Replace a site or kiosk layer (diff returned)", "admin",
                           params=[layer, _p("target", "site or kiosk id")], body=config_body)},
            "/api/v1/audit": {"get": _op("The fleet's one audit log, newest first: total and items (ts, user, "
                                         "action, target, detail, result)", "viewer", params=[
                _q("target", {"type": "string"}, "kiosk:ID, site:NAME, alarm:N, notice:ID, a user or token"),
                _q("limit", {"type": "integer"}, "rows (1-1000, default 100)"),
                _q("offset", {"type": "integer"}, "rows to skip")])},
            "/api/v1/reports": {"get": _op("Service and availability report", "viewer", params=[
                _q("from", {"type": "string", "format": "date"}, "first day (YYYY-MM-DD)"),
                _q("to", {"type": "string", "format": "date"}, "last day (YYYY-MM-DD)"),
                _q("site", {"type": "string"}, "one site or all")])},
            "/api/v1/sites/{site}/queue": {"get": _op("Today's queue at a site: waiting per counter, last calls",
                                                      "viewer", params=[SITE])},
            "/api/v1/sites/{site}/queue/next": {"post": _op(
                "Call the next waiting ticket at a site (staff at the window); stores called_at", "operator",
                params=[SITE, IDEMPOTENCY], ok="the ticket called, with its wait; 409 when nobody waits",
                body={"type": "object", "properties": {
                    "counter": {"type": "string", "enum": list(COUNTER_PREFIX), "description": "one counter, or any"},
                    "request_id": {"type": "string", "maxLength": 100,
                                   "description": "repeating a request id returns the same ticket"}}})},
            "/api/v1/enrolment-tokens": {
                "post": _op("Issue a one-time kiosk enrolment token (returned only in this answer)", "admin",
                            status="201", ok="the token, its expiry and the fleet CA fingerprint (ca_hash)",
                            body={"type": "object", "required": ["site"], "properties": {
                                "site": {"type": "string", "maxLength": 64}, "kiosk_id": {"type": "string"},
                                "ttl": {"type": "number", "minimum": 1, "maximum": 604800,
                                        "description": "seconds until it expires (3600)"}}}),
                "get": _op("Enrolment tokens: site, kiosk, expiry, used or not (never the token)", "admin")},
            "/api/v1/requests": {"get": _op(
                "Residents' requests (feedback registered at kiosks: category, problem, urgency), urgent first, "
                "newest first; call-back numbers masked (phone_state kept, none or expired); due_at and "
                "overdue against the reply "
                "promised (1 working day urgent, 3 normal, Monday-Friday Asia/Shanghai)", "viewer", params=[
                    _q("site", {"type": "string", "maxLength": 64}, "the kiosk's site in the registry"),
                    _q("status", {"type": "string", "enum": list(REQUEST_STATUSES)}, "open (default), handled or all"),
                    _q("urgency", {"type": "string", "enum": [*URGENCIES, "all"]}, "one urgency, or both"),
                    _q("limit", {"type": "integer", "minimum": 1, "maximum": MAX_LIMIT}, "how many (200)")])},
            "/api/v1/requests/{ref}/reveal": {"post": _op(
                "The full call-back number of a request; recorded in the audit trail (who, which request). "
                "409 when the resident left none, 410 when the controller no longer keeps it "
                "(phone_retention_days)", "operator", params=[REF], ok="ref and phone", errors=("409", "410"))},
            "/api/v1/requests/{ref}/handled": {"post": _op(
                "Mark a request handled, with an optional note; audited. Marking again changes nothing and "
                "answers the first record with repeated: true", "operator", params=[REF],
                ok="ref, status, handled_by, handled_at, note, repeated",
                body={"type": "object", "properties": {"note": {"type": "string", "maxLength": MAX_NOTE}}})},
            **rollout_api.openapi_paths(_op, _p),  # releases, rollouts (issue 15)
        },
    }


async def endpoint(request: Request) -> JSONResponse:
    return JSONResponse(spec())
