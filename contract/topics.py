"""Topics of the fleet link, their QoS and retain flags, and the codec every payload goes through.

Root ``kiosk/v1/{kiosk_id}/``; every payload is a JSON object with ``"v"`` (see
:mod:`contract.versions`). :func:`parse` turns a received message into a :class:`Parsed` holding
the topic's typed model (:mod:`contract.payloads`, :mod:`contract.device_status`,
:mod:`contract.commands`, :mod:`contract.services`); docs/mqtt.md documents each topic.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from contract import commands, device_status, json_values, payloads, updates, versions, vocab
from foundation.errors import RemoteProtocolError
from foundation.settings import check_kiosk_id

ROOT = "kiosk/v1"
VERSION = versions.CURRENT
MAX_PAYLOAD = 256 * 1024  # larger payloads are refused before parsing
CONTROLLER_STATUS = f"{ROOT}/_controller/status"

# (QoS, retain) per topic kind, from the contract. Nobody else writes a QoS or retain literal.
FLAGS: dict[str, tuple[int, bool]] = {
    "status": (1, True), "telemetry": (0, False), "devices": (1, True), "events": (1, False),
    "config/desired": (1, True), "config/reported": (1, True), "cmd": (1, False), "cmd/result": (1, False),
    "svc/request": (1, False), "svc/response": (1, False), "controller/status": (1, True),
    "update/state": (1, True),
    "events/ack": (1, False),
}
QOS = {k: q for k, (q, _) in FLAGS.items()}
RETAIN = {k: r for k, (_, r) in FLAGS.items()}
MODES = vocab.MODES
RESULT_STATUSES = vocab.RESULT_STATUSES


def topic(kiosk_id: str, kind: str) -> str:
    return f"{ROOT}/{kiosk_id}/{kind}"


def cmd_topic(kiosk_id: str, name: str) -> str:
    return f"{ROOT}/{kiosk_id}/cmd/{name}"


def subscriptions_for_kiosk(kiosk_id: str) -> list[tuple[str, int]]:
    return [
        (topic(kiosk_id, "config/desired"), QOS["config/desired"]),
        (f"{ROOT}/{kiosk_id}/cmd/+", QOS["cmd"]),
        (topic(kiosk_id, "events/ack"), QOS["events/ack"]),
        (CONTROLLER_STATUS, QOS["controller/status"]),
    ]


def subscriptions_for_controller(share_group: str = "") -> list[tuple[str, int]]:
    """The kiosk topics a controller reads. With ``share_group`` (several controller instances)
    each is an MQTT v5 shared subscription ``$share/<group>/...``: the broker hands every message
    to one member. The controllers' own presence is then read by every instance, unshared."""
    prefix = f"$share/{share_group}/" if share_group else ""
    subs = [(prefix + t, q) for t, q in _CONTROLLER_READS]
    return [*subs, (CONTROLLER_STATUS, QOS["controller/status"])] if share_group else subs


_CONTROLLER_READS: list[tuple[str, int]] = [
    (f"{ROOT}/+/status", QOS["status"]),
    (f"{ROOT}/+/telemetry", QOS["telemetry"]),
    (f"{ROOT}/+/devices/+", QOS["devices"]),
    (f"{ROOT}/+/events", QOS["events"]),
    (f"{ROOT}/+/config/reported", QOS["config/reported"]),
    (f"{ROOT}/+/cmd/+/result", QOS["cmd/result"]),
    (f"{ROOT}/+/svc/request", QOS["svc/request"]),
    (f"{ROOT}/+/update/state", QOS["update/state"]),
]


def response_topic(kiosk_id: str, requested: str | None) -> tuple[str, bool]:
    """Where the answer to a kiosk's ``svc/request`` goes: always that kiosk's own ``svc/response``
    (``kiosk_id`` from the topic the request came in on, which the broker's ACL binds to the
    certificate), never a topic the request's MQTT v5 response-topic property names. Returns the
    topic and whether the request asked for somewhere else (to be counted)."""
    own = topic(kiosk_id, "svc/response")
    return own, bool(requested) and requested != own


@dataclass(frozen=True)
class Parsed:
    """A message from a kiosk, split into its parts."""

    kiosk_id: str
    kind: str  # status, telemetry, devices, events, config/reported, cmd/result, svc/request, update/state
    name: str | None  # device name or command name
    body: dict[str, Any]  # the decoded payload, as received (stored where the contract says so)
    model: Any = None  # the topic's typed model (KioskStatus, Telemetry, DeviceStatus, Event, ...)
    version: tuple[int, int] = (versions.MAJOR, 0)
    # The payload as received (UTF-8 JSON that ``body`` was decoded from and checked against):
    # stored as it is where the contract keeps the whole body (events), instead of encoding again.
    text: str = ""


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
    if rest == ["update", "state"]:
        return kiosk_id, "update/state", None
    raise RemoteProtocolError(f"unknown topic {topic_name!r}")


def decode(payload: bytes) -> dict[str, Any]:
    """Decode one payload or raise RemoteProtocolError (UnsupportedVersion for another major)."""
    return _decode(payload)[1]


def _decode(payload: bytes) -> tuple[str, dict[str, Any], tuple[int, int]]:
    """The payload's text, its decoded body and its contract version (checked once)."""
    if len(payload) > MAX_PAYLOAD:
        raise RemoteProtocolError(f"payload of {len(payload)} bytes exceeds {MAX_PAYLOAD}")
    try:
        text = payload.decode("utf-8")
        body = json_values.loads(text)
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise RemoteProtocolError(f"payload is not UTF-8 JSON: {exc}") from None
    if not isinstance(body, dict):
        raise RemoteProtocolError("payload is not a JSON object")
    return text, body, versions.check(body)


_PARSERS = {
    "status": payloads.parse_status, "telemetry": payloads.parse_telemetry, "devices": device_status.parse,
    "events": payloads.parse_event, "config/reported": payloads.parse_config_reported,
    "cmd/result": commands.parse_result, "svc/request": lambda body: body,
    "update/state": updates.parse_state,
}


def parse(topic_name: str, payload: bytes) -> Parsed:
    """A message from a kiosk: topic checked, payload decoded, version checked, model parsed.

    ``svc/request`` keeps its body unparsed: the service backend answers a bad request itself
    (``bad_request``), so the kiosk is never left waiting.
    """
    kiosk_id, kind, name = parse_topic(topic_name)
    text, body, version = _decode(payload)
    claimed = body.get("kiosk_id")
    if claimed is not None and claimed != kiosk_id:
        # Only broker ACLs can stop the publish; the controller at least never files it under
        # the wrong kiosk.
        raise RemoteProtocolError(f"payload of kiosk {str(claimed)[:64]!r} published under kiosk {kiosk_id!r}")
    model = _PARSERS[kind](body)
    return Parsed(kiosk_id, kind, name, body, model, version, text)


def encode(body: dict[str, Any], version: str | int = VERSION) -> bytes:
    """JSON bytes of a body built by the contract's builders; ``v`` first."""
    return json.dumps({"v": version, **body}, ensure_ascii=False, separators=(",", ":")).encode("utf-8")


def encode_to_kiosk(body: dict[str, Any]) -> bytes:
    """Controller -> kiosk payloads carry the version every kiosk of the major reads."""
    return encode(body, versions.TO_KIOSK)
