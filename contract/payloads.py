"""Models, builders and parsers of the kiosk's own topics: status, telemetry, events, config.

Each topic has a frozen dataclass, a builder that returns the JSON body (without ``v``; the
codec in :mod:`contract.topics` adds it) and a parser that validates a decoded body and returns
the model. Parsers follow :mod:`contract.versions`: unknown fields are ignored, missing optional
fields take their defaults, and anything a kiosk could send wrongly raises RemoteProtocolError
naming the field.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

from contract import device_status, versions, vocab
from foundation.errors import RemoteProtocolError

_WORD = re.compile(r"^[a-z][a-z0-9_]{0,31}$")


def _str(body: dict[str, Any], key: str, limit: int = 64, default: str = "") -> str:
    value = body.get(key, default)
    if value is None:
        return default
    if not isinstance(value, str):
        raise RemoteProtocolError(f"{key} must be a string")
    return value[:limit]


def _num(value: Any) -> float | None:
    return float(value) if isinstance(value, int | float) and not isinstance(value, bool) else None


def _word(body: dict[str, Any], key: str, known: tuple[str, ...], default: str) -> str:
    """A vocabulary word; a newer minor may add words, so any well-formed word is kept."""
    value = body.get(key, default)
    if not isinstance(value, str) or not _WORD.match(value):
        raise RemoteProtocolError(f"{key} must be one of {', '.join(known)}, got {str(value)[:32]!r}")
    return value


# -- status (retained) ---------------------------------------------------------------------------

@dataclass(frozen=True)
class KioskStatus:
    state: str  # online / offline
    boot_id: str = ""
    mode: str = "normal"  # vocab.MODES (online only)
    site: str | None = None  # None: the kiosk did not say
    versions: dict[str, str] = field(default_factory=dict)
    devices: tuple[str, ...] = ()
    ts: float | None = None
    reason: str = ""  # offline: lwt / shutdown
    stamp: int | None = None  # the connection's stamp (see :func:`connection_stamp`); None: an older kiosk


# The connection stamp: one integer per broker connection, in the birth and in the will registered
# for that connection (and the clean stop sent on it), so a reader orders a status by the connection
# that produced it. The kiosk's clock in ms, raised to one past the last stamp it used (kept across
# reboots), so it only grows even when the clock steps back; unlike a random connection id it orders
# connections of different boots as well. An optional field: older readers ignore it.
STAMP_MAX = 2**63 - 1  # what a BIGINT column holds


def connection_stamp(now: float, last: int | None) -> int:
    """The stamp of a new connection at ``now`` (seconds) after the one stamped ``last``."""
    return max(int(now * 1000), (last or 0) + 1)


def _with_stamp(body: dict[str, Any], stamp: int | None) -> dict[str, Any]:
    return {**body, "stamp": stamp} if stamp is not None else body


def birth(kiosk_id: str, *, mode: str, boot_id: str, site: str, versions: dict[str, str], devices: list[str],
          ts: float, stamp: int | None = None) -> dict[str, Any]:
    if mode not in vocab.MODES:
        raise ValueError(f"mode must be one of {', '.join(vocab.MODES)}, got {mode!r}")
    return _with_stamp({"state": "online", "kiosk_id": kiosk_id, "mode": mode, "boot_id": boot_id, "site": site,
                        "versions": dict(versions), "devices": sorted(devices), "ts": ts}, stamp)


def offline(kiosk_id: str, boot_id: str, reason: str, stamp: int | None = None) -> dict[str, Any]:
    """The will (``lwt``) and the clean stop (``shutdown``), with the stamp of the connection they end."""
    if reason not in vocab.OFFLINE_REASONS:
        raise ValueError(f"reason must be one of {', '.join(vocab.OFFLINE_REASONS)}")
    return _with_stamp({"state": "offline", "reason": reason, "kiosk_id": kiosk_id, "boot_id": boot_id}, stamp)


def _stamp(body: dict[str, Any]) -> int | None:
    value = body.get("stamp")
    if value is None:
        return None
    if not isinstance(value, int) or isinstance(value, bool) or not 0 <= value <= STAMP_MAX:
        raise RemoteProtocolError(f"stamp must be a whole number from 0 to {STAMP_MAX}, got {str(value)[:32]!r}")
    return value


def parse_status(body: dict[str, Any]) -> KioskStatus:
    state = body.get("state")
    if state not in vocab.PRESENCE:
        raise RemoteProtocolError(f"status state must be online or offline, got {str(state)[:32]!r}")
    versions = body.get("versions")
    devices = body.get("devices")
    return KioskStatus(
        state=state, boot_id=_str(body, "boot_id"),
        mode=_word(body, "mode", vocab.MODES, "normal") if state == "online" else "",
        site=_str(body, "site") if isinstance(body.get("site"), str) else None,
        versions={str(k)[:32]: str(v)[:32] for k, v in versions.items()} if isinstance(versions, dict) else {},
        devices=tuple(str(d)[:64] for d in devices[:32]) if isinstance(devices, list) else (),
        ts=_num(body.get("ts")), reason=_str(body, "reason"), stamp=_stamp(body))


# -- controller presence (retained) --------------------------------------------------------------

def controller_online(ts: float, instance: str = "", *, queued_while_away: bool = False) -> dict[str, Any]:
    """``contract`` says which minor the controller reads (from 1.2; absent means 1.0/1.1), so a
    kiosk sends what only a newer controller reads (telemetry deltas) only when it is there.
    ``acks_events``: this controller answers stored events on ``events/ack`` (see below); a kiosk
    facing a controller whose presence lacks it falls back to dropping events on the broker's PUBACK.
    ``queued_while_away``: the broker keeps this controller's session while it is away (one
    controller, persistent session), so what kiosks sent meanwhile reaches it when it is back; a
    kiosk then need not send everything unacknowledged again at once on its return
    (``kiosk_ui.agent.resend_rule``). Absent: it must (several instances, clean sessions).
    ``instance`` (several controllers): which instance said it, for people reading the broker; kiosks
    need not read it, the fleet's controllers are online while any instance is."""
    body: dict[str, Any] = {"state": "online", "ts": ts, "contract": f"{versions.MAJOR}.{versions.MINOR}",
                            "acks_events": True}
    if queued_while_away:
        body["queued_while_away"] = True
    return {**body, "instance": instance} if instance else body


def controller_offline(reason: str) -> dict[str, Any]:
    return {"state": "offline", "reason": reason}


def parse_controller_status(body: dict[str, Any]) -> bool:
    """True when the controller says it is online."""
    return body.get("state") == "online"


def controller_reads(body: dict[str, Any]) -> tuple[int, int]:
    """The contract version an online controller reads: (1, 1) when it does not say (1.0 / 1.1)."""
    try:
        return versions.parse_version(body.get("contract"))
    except RemoteProtocolError:
        return (versions.MAJOR, 1)


def controller_acks_events(body: dict[str, Any]) -> bool:
    """True when the controller's presence says it acknowledges stored events."""
    return body.get("state") == "online" and body.get("acks_events") is True


def controller_queued_while_away(body: dict[str, Any]) -> bool:
    """True when the controller's presence says the broker queued what was sent while it was away."""
    return body.get("state") == "online" and body.get("queued_while_away") is True


# -- telemetry ------------------------------------------------------------------------------------

TELEMETRY_NUMBERS = ("uptime", "cpu", "memory", "disk", "temperature", "enclosure_temperature", "queue_depth")
# Since 1.2 a kiosk sends a full snapshot on every connect and every FULL_EVERY-th message, and in
# between only what changed (a *delta*, ``"delta": true``). A number counts as changed when it moved
# by more than its dead band since it was last sent; a metered 4G link pays for every byte, and a
# CPU figure wobbling by a point tells nobody anything. Uptime is never in a delta: the reader
# advances it by the time between the two messages.
DELTA_SINCE = (1, 2)
FULL_EVERY = 10  # at 30 s: a full snapshot every 5 minutes
DEAD_BANDS = {"cpu": 5.0, "memory": 1.0, "disk": 0.5, "temperature": 1.0, "enclosure_temperature": 0.5,
              "queue_depth": 0.0}


@dataclass(frozen=True)
class Telemetry:
    ts: float | None = None
    uptime: float | None = None
    cpu: float | None = None
    memory: float | None = None
    disk: float | None = None
    temperature: float | None = None
    enclosure_temperature: float | None = None
    queue_depth: float | None = None
    devices: dict[str, str] = field(default_factory=dict)  # name -> device state
    mode: str = ""
    delta: bool = False  # a 1.2 delta: only the fields in ``present`` were sent
    present: frozenset[str] = frozenset()

    def get(self, name: str, default: Any = None) -> Any:
        """A field by name: what the alarm rules read."""
        return getattr(self, name, default) if name in _TELEMETRY_FIELDS else default

    def to_dict(self) -> dict[str, Any]:
        return {k: getattr(self, k) for k in _TELEMETRY_FIELDS}


_TELEMETRY_FIELDS = ("ts", *TELEMETRY_NUMBERS, "devices", "mode")
_ALL_FIELDS = frozenset(_TELEMETRY_FIELDS)
_NUMBER_FIELDS = ("ts", *TELEMETRY_NUMBERS)


def telemetry(kiosk_id: str, *, ts: float, uptime: float, cpu: float | None, memory: float | None,
              disk: float | None, temperature: float | None, enclosure_temperature: float | None,
              devices: dict[str, str], queue_depth: int, mode: str) -> dict[str, Any]:
    """A full snapshot (every version reads it)."""
    return {"kiosk_id": kiosk_id, "ts": round(ts, 1), "uptime": round(uptime), "cpu": cpu, "memory": memory,
            "disk": disk, "temperature": temperature, "enclosure_temperature": enclosure_temperature,
            "devices": dict(devices), "queue_depth": queue_depth, "mode": mode}


def telemetry_delta(last_sent: dict[str, Any], full: dict[str, Any]) -> dict[str, Any]:
    """What of the snapshot ``full`` (built by :func:`telemetry`) must go out after ``last_sent``
    (what the reader holds: the last snapshot plus the deltas since, as :func:`merge_telemetry` keeps
    them). The kiosk id is left to the topic, which the broker's ACL binds to the certificate."""
    out: dict[str, Any] = {"delta": True, "ts": full["ts"]}
    for key, band in DEAD_BANDS.items():
        new, old = full.get(key), last_sent.get(key)
        if (new is None) != (old is None) or (new is not None and abs(new - old) > band):
            out[key] = new
    for key in ("devices", "mode"):
        if full.get(key) != last_sent.get(key):
            out[key] = full.get(key)
    return out


def merge_telemetry(base: Telemetry | dict[str, Any] | None, update: Telemetry) -> Telemetry:
    """The kiosk's telemetry after ``update``: a full snapshot replaces ``base``; a delta changes
    only what it carries (a delta with no base leaves the rest unknown until the next snapshot)."""
    if not update.delta:
        return update
    held = base.to_dict() if isinstance(base, Telemetry) else base or {}  # only read: no copy
    values = {k: held.get(k) for k in _TELEMETRY_FIELDS}
    uptime, since = values["uptime"], values["ts"]
    for key in update.present:
        values[key] = getattr(update, key)
    if uptime is not None and since is not None and update.ts is not None and update.ts >= since:
        values["uptime"] = uptime + (update.ts - since)
    nums = {k: _num(values[k]) for k in _NUMBER_FIELDS}
    return Telemetry(**nums, devices={str(k): str(v) for k, v in (values["devices"] or {}).items()},
                     mode=str(values["mode"] or ""), delta=False, present=_ALL_FIELDS)


def parse_telemetry(body: dict[str, Any]) -> Telemetry:
    nums = {}
    for key in TELEMETRY_NUMBERS:
        value = body.get(key)
        nums[key] = _num(value)
        if nums[key] is None and value is not None:
            raise RemoteProtocolError(f"telemetry {key} must be a number or null")
    delta = body.get("delta", False)
    if not isinstance(delta, bool):
        raise RemoteProtocolError("telemetry delta must be true or false")
    devices = body.get("devices")
    if delta and devices is not None and not isinstance(devices, dict):
        raise RemoteProtocolError("telemetry devices must be an object")
    present = frozenset(k for k in _TELEMETRY_FIELDS if k in body) if delta else _ALL_FIELDS
    return Telemetry(ts=_num(body.get("ts")), **nums,
                     devices={str(k)[:64]: str(v)[:16] for k, v in list(devices.items())[:32]}
                     if isinstance(devices, dict) else {},
                     mode=str(body.get("mode", ""))[:32], delta=delta, present=present)


# -- events ---------------------------------------------------------------------------------------

@dataclass(frozen=True)
class Event:
    id: str
    seq: int
    type: str  # vocab.EVENT_TYPES (a newer minor may add types: stored as they come)
    boot_id: str = ""
    ts: float | None = None
    fields: dict[str, Any] = field(default_factory=dict)  # the type's own fields
    raw: dict[str, Any] = field(default_factory=dict, compare=False)  # the body as received, stored

    def get(self, name: str, default: Any = None) -> Any:
        if name in ("id", "seq", "type", "boot_id", "ts"):
            return getattr(self, name)
        return self.fields.get(name, default)


_EVENT_KEYS = ("v", "id", "kiosk_id", "boot_id", "seq", "ts", "type")


def event(kiosk_id: str, *, event_id: str, boot_id: str, seq: int, ts: float, type: str,
          fields: dict[str, Any]) -> dict[str, Any]:
    clash = set(fields) & set(_EVENT_KEYS)
    if clash:
        raise ValueError(f"event fields may not reuse {sorted(clash)}")
    return {"id": event_id, "kiosk_id": kiosk_id, "boot_id": boot_id, "seq": seq, "ts": ts, "type": type, **fields}


def parse_event(body: dict[str, Any]) -> Event:
    if not isinstance(body.get("id"), str) or not body["id"] or not isinstance(body.get("type"), str):
        raise RemoteProtocolError("event needs string id and type")
    seq = body.get("seq")
    if not isinstance(seq, int) or isinstance(seq, bool):
        raise RemoteProtocolError("event needs an integer seq")
    return Event(id=body["id"][:128], seq=seq, type=body["type"][:64], boot_id=_str(body, "boot_id"),
                 ts=_num(body.get("ts")), fields={k: v for k, v in body.items() if k not in _EVENT_KEYS},
                 raw=body)


# -- events/ack (controller -> kiosk) -------------------------------------------------------------

MAX_ACK_IDS = 500  # ids per acknowledgement; the controller splits larger batches


def events_ack(ids: list[str]) -> dict[str, Any]:
    """The ids of events that are committed to the controller's database (new or duplicate)."""
    if len(ids) > MAX_ACK_IDS:
        raise ValueError(f"at most {MAX_ACK_IDS} ids per acknowledgement, got {len(ids)}")
    return {"ids": list(ids)}


def parse_events_ack(body: dict[str, Any]) -> tuple[str, ...]:
    ids = body.get("ids")
    if not isinstance(ids, list) or len(ids) > MAX_ACK_IDS:
        raise RemoteProtocolError(f"events/ack needs a list of at most {MAX_ACK_IDS} ids")
    if not all(isinstance(i, str) and 0 < len(i) <= 128 for i in ids):
        raise RemoteProtocolError("events/ack ids must be non-empty strings of at most 128 characters")
    return tuple(ids)


# -- config/desired and config/reported (both retained) -------------------------------------------

@dataclass(frozen=True)
class ConfigDesired:
    version: int
    config: dict[str, Any]


def config_desired(version: int, config: dict[str, Any]) -> dict[str, Any]:
    return {"version": version, "config": config}


def parse_config_desired(body: dict[str, Any]) -> ConfigDesired:
    """Shape only; the keys are checked by :func:`contract.desired_config.validate`."""
    version = body.get("version")
    if not isinstance(version, int) or isinstance(version, bool) or version < 0:
        raise RemoteProtocolError(f"version: must be a non-negative integer, got {str(version)[:32]!r}")
    config = body.get("config")
    if not isinstance(config, dict):
        raise RemoteProtocolError("config: must be a JSON object")
    return ConfigDesired(version, config)


@dataclass(frozen=True)
class ConfigReported:
    version: int | None
    status: str  # applied / rejected
    config: dict[str, Any]
    reason: str = ""
    # The report's place in the kiosk's order, as on a device status (device_status.body); optional.
    ts: float | None = None
    boot_id: str = ""

    def to_dict(self) -> dict[str, Any]:
        out = {"version": self.version, "status": self.status, "config": self.config}
        if self.reason:
            out["reason"] = self.reason
        if self.ts is not None:
            out["ts"] = self.ts
        if self.boot_id:
            out["boot_id"] = self.boot_id
        return out


def config_reported(kiosk_id: str, *, version: int | None, status: str, config: dict[str, Any],
                    reason: str = "", ts: float | None = None, boot_id: str = "") -> dict[str, Any]:
    if status not in vocab.CONFIG_STATUSES:
        raise ValueError(f"status must be one of {', '.join(vocab.CONFIG_STATUSES)}")
    return {"kiosk_id": kiosk_id, **ConfigReported(version, status, config, reason[:300], ts, boot_id).to_dict()}


def parse_config_reported(body: dict[str, Any]) -> ConfigReported:
    version = body.get("version")
    if version is not None and (not isinstance(version, int) or isinstance(version, bool)):
        raise RemoteProtocolError("config/reported version must be an integer")
    status = body.get("status")
    if status not in vocab.CONFIG_STATUSES:
        raise RemoteProtocolError(f"config/reported status must be applied or rejected, got {str(status)[:32]!r}")
    config = body.get("config")
    ts, boot_id = device_status.order_fields(body)
    return ConfigReported(version, status, config if isinstance(config, dict) else {}, _str(body, "reason", 300),
                          ts, boot_id)
