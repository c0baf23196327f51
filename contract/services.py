"""Resident-service calls: ``svc/request`` (kiosk -> backend) and its answer (QoS 1, not retained).

MQTT v5 request/response: the kiosk sets the *Response Topic* (default
``kiosk/v1/{id}/svc/response``) and *Correlation Data*; the backend answers there with the same
correlation data. Request body ``{"service", "op", "args"}``; answer ``{"ok": true, "data": {...}}``
or ``{"ok": false, "error": CODE, "message": ...}`` with a stable code the kiosk translates.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from foundation.errors import RemoteProtocolError


@dataclass(frozen=True)
class ServiceRequest:
    service: str
    op: str
    args: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class ServiceResponse:
    ok: bool
    data: dict[str, Any] = field(default_factory=dict)
    error: str = ""  # a stable code (vocab.SERVICE_ERRORS or the backend's own, e.g. slot_full)
    message: str = ""


def request(service: str, op: str, args: dict[str, Any]) -> dict[str, Any]:
    return {"service": service, "op": op, "args": args}


def parse_request(body: dict[str, Any]) -> ServiceRequest:
    service, op, args = body.get("service"), body.get("op"), body.get("args", {})
    if not isinstance(service, str) or not isinstance(op, str) or not service or not op:
        raise RemoteProtocolError("service request needs string service and op")
    if not isinstance(args, dict):
        raise RemoteProtocolError("service request args must be a JSON object")
    return ServiceRequest(service[:64], op[:64], args)


def answer(data: dict[str, Any]) -> dict[str, Any]:
    return {"ok": True, "data": data}


def refusal(error: str, message: str) -> dict[str, Any]:
    return {"ok": False, "error": error, "message": message[:500]}


def parse_response(body: dict[str, Any]) -> ServiceResponse:
    ok = body.get("ok")
    if not isinstance(ok, bool):
        raise RemoteProtocolError("service response needs a boolean ok")
    data = body.get("data")
    return ServiceResponse(ok, data if isinstance(data, dict) else {}, str(body.get("error") or ("" if ok else "error"))[:64],
                           str(body.get("message") or "")[:500])
