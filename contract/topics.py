"""MQTT topics and payloads of the fleet link, sans-IO.

Root ``kiosk/v1/{kiosk_id}/``; every payload is a JSON object with ``"v": 1``. The README's
"MQTT contract" section documents each topic; this module is its executable form.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from foundation.errors import RemoteProtocolError
from foundation.settings import check_kiosk_id

ROOT = "kiosk/v1"
VERSION = 1
MAX_PAYLOAD = 256 * 1024  # larger payloads are refused before parsing
CONTROLLER_STATUS = f"{ROOT}/_controller/status"

# QoS and retain per topic kind, from the contract.
QOS = {"status": 1, "telemetry": 0, "devices": 1, "events": 1, "config/desired": 1, "config/reported": 1,
       "cmd": 1, "cmd/result": 1, "svc/request": 1, "svc/response": 1}
RETAIN = {"status": True, "telemetry": False, "devices": True, "events": False,
          "config/desired": True, "config/reported": True, "cmd": False, "cmd/result": False}
MODES = ("normal", "safe", "maintenance", "out_of_service")
RESULT_STATUSES = ("ok", "error", "rejected", "expired")


def topic(kiosk_id: str, kind: str) -> str:
    return f"{ROOT}/{kiosk_id}/{kind}"


def cmd_topic(kiosk_id: str, name: str) -> str:
    return f"{ROOT}/{kiosk_id}/cmd/{name}"


def subscriptions_for_kiosk(kiosk_id: str) -> list[tuple[str, int]]:
    return [
        (topic(kiosk_id, "config/desired"), 1),
        (f"{ROOT}/{kiosk_id}/cmd/+", 1),
        (CONTROLLER_STATUS, 1),
    ]


def subscriptions_for_controller() -> list[tuple[str, int]]:
    return [
        (f"{ROOT}/+/status", 1),
        (f"{ROOT}/+/telemetry", 0),
        (f"{ROOT}/+/devices/+", 1),
        (f"{ROOT}/+/events", 1),
        (f"{ROOT}/+/config/reported", 1),
        (f"{ROOT}/+/cmd/+/result", 1),
        (f"{ROOT}/+/svc/request", 1),
    ]


@dataclass(frozen=True)
class Parsed:
    """A message from a kiosk, split into its parts."""

    kiosk_id: str
    kind: str  # status, telemetry, devices, events, config/reported, cmd/result, svc/request
    name: str | None  # device name or command name
    body: dict[str, Any]


def parse_topic(topic_name: str) -> tuple[str, str, str | None]:
    parts = topic_name.split("/")
    if len(parts) < 4 or parts[0] != "kiosk" or parts[1] != "v1":
        raise RemoteProtocolError(f"unknown topic {topic_name!r}")
    kiosk_id = parts[2]
    try:
        check_kiosk_id(kiosk_id)
    except Exception:
        raise RemoteProtocolError(f"bad kiosk id in topic {topic_name!r}") from None
    rest = parts[3:]
    if rest in (["status"], ["telemetry"], ["events"]):
        return kiosk_id, rest[0], None
    if len(rest) == 2 and rest[0] == "devices":
        return kiosk_id, "devices", rest[1]
    if rest == ["config", "reported"]:
        return kiosk_id, "config/reported", None
    if len(rest) == 3 and rest[0] == "cmd" and rest[2] == "result":
        return kiosk_id, "cmd/result", rest[1]
    if rest == ["svc", "request"]:
        return kiosk_id, "svc/request", None
    raise RemoteProtocolError(f"unknown topic {topic_name!r}")


def decode(payload: bytes) -> dict[str, Any]:
    """Decode one payload or raise RemoteProtocolError naming what was wrong."""
    if len(payload) > MAX_PAYLOAD:
        raise RemoteProtocolError(f"payload of {len(payload)} bytes exceeds {MAX_PAYLOAD}")
    try:
        body = json.loads(payload.decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise RemoteProtocolError(f"payload is not UTF-8 JSON: {exc}") from None
    if not isinstance(body, dict):
        raise RemoteProtocolError("payload is not a JSON object")
    if body.get("v") != VERSION:
        raise RemoteProtocolError(f"payload version {body.get('v')!r} is not {VERSION}")
    return body


def parse(topic_name: str, payload: bytes) -> Parsed:
    kiosk_id, kind, name = parse_topic(topic_name)
    body = decode(payload)
    if kind == "status" and body.get("state") not in ("online", "offline"):
        raise RemoteProtocolError(f"status state must be online or offline, got {body.get('state')!r}")
    if kind == "events":
        if not isinstance(body.get("id"), str) or not isinstance(body.get("type"), str):
            raise RemoteProtocolError("event needs string id and type")
        if not isinstance(body.get("seq"), int) or isinstance(body.get("seq"), bool):
            raise RemoteProtocolError("event needs an integer seq")
    if kind == "telemetry" and not isinstance(body.get("uptime", 0), int | float):
        raise RemoteProtocolError("telemetry uptime must be a number")
    claimed = body.get("kiosk_id")
    if claimed is not None and claimed != kiosk_id:
        # Only broker ACLs can stop the publish; the controller at least never files it under
        # the wrong kiosk.
        raise RemoteProtocolError(f"payload of kiosk {str(claimed)[:64]!r} published under kiosk {kiosk_id!r}")
    if kind == "devices" and not isinstance(body.get("state"), str):
        raise RemoteProtocolError("device status needs a string state")
    if kind == "cmd/result":
        if not isinstance(body.get("id"), str) or body.get("status") not in RESULT_STATUSES:
            raise RemoteProtocolError("command result needs a string id and a status of "
                                      + ", ".join(RESULT_STATUSES))
    if kind == "config/reported" and not isinstance(body.get("version", 0), int):
        raise RemoteProtocolError("config/reported version must be an integer")
    return Parsed(kiosk_id, kind, name, body)


def encode(body: dict[str, Any]) -> bytes:
    return json.dumps({"v": VERSION, **body}, ensure_ascii=False, separators=(",", ":")).encode("utf-8")
