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

from contract import vocab
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


def birth(kiosk_id: str, *, mode: str, boot_id: str, site: str, versions: dict[str, str], devices: list[str],
          ts: float) -> dict[str, Any]:
    if mode not in vocab.MODES:
        raise ValueError(f"mode must be one of {', '.join(vocab.MODES)}, got {mode!r}")
    return {"state": "online", "kiosk_id": kiosk_id, "mode": mode, "boot_id": boot_id, "site": site,
            "versions": dict(versions), "devices": sorted(devices), "ts": ts}


def offline(kiosk_id: str, boot_id: str, reason: str) -> dict[str, Any]:
    """The will (``lwt``) and the clean stop (``shutdown``)."""
    if reason not in vocab.OFFLINE_REASONS:
        raise ValueError(f"reason must be one of {', '.join(vocab.OFFLINE_REASONS)}")
    return {"state": "offline", "reason": reason, "kiosk_id": kiosk_id, "boot_id": boot_id}


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
        ts=_num(body.get("ts")), reason=_str(body, "reason"))


# -- controller presence (retained) --------------------------------------------------------------

def controller_online(ts: float) -> dict[str, Any]:
    return {"state": "online", "ts": ts}


def controller_offline(reason: str) -> dict[str, Any]:
    return {"state": "offline", "reason": reason}


def parse_controller_status(body: dict[str, Any]) -> bool:
    """True when the controller says it is online."""
    return body.get("state") == "online"


# -- telemetry ------------------------------------------------------------------------------------

TELEMETRY_NUMBERS = ("uptime", "cpu", "memory", "disk", "temperature", "enclosure_temperature", "queue_depth")


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

    def get(self, name: str, default: Any = None) -> Any:
        """A field by name: what the alarm rules read."""
        return getattr(self, name, default) if name in self.__dataclass_fields__ else default

    def to_dict(self) -> dict[str, Any]:
        return {k: getattr(self, k) for k in self.__dataclass_fields__}


def telemetry(kiosk_id: str, *, ts: float, uptime: float, cpu: float | None, memory: float | None,
              disk: float | None, temperature: float | None, enclosure_temperature: float | None,
              devices: dict[str, str], queue_depth: int, mode: str) -> dict[str, Any]:
    return {"kiosk_id": kiosk_id, "ts": ts, "uptime": uptime, "cpu": cpu, "memory": memory, "disk": disk,
            "temperature": temperature, "enclosure_temperature": enclosure_temperature,
            "devices": dict(devices), "queue_depth": queue_depth, "mode": mode}


def parse_telemetry(body: dict[str, Any]) -> Telemetry:
    for key in TELEMETRY_NUMBERS:
        if body.get(key) is not None and _num(body.get(key)) is None:
            raise RemoteProtocolError(f"telemetry {key} must be a number or null")
    devices = body.get("devices")
    return Telemetry(ts=_num(body.get("ts")), **{k: _num(body.get(k)) for k in TELEMETRY_NUMBERS},
                     devices={str(k)[:64]: str(v)[:16] for k, v in list(devices.items())[:32]}
                     if isinstance(devices, dict) else {},
                     mode=str(body.get("mode", ""))[:32])


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

    def to_dict(self) -> dict[str, Any]:
        out = {"version": self.version, "status": self.status, "config": self.config}
        if self.reason:
            out["reason"] = self.reason
        return out


def config_reported(kiosk_id: str, *, version: int | None, status: str, config: dict[str, Any],
                    reason: str = "") -> dict[str, Any]:
    if status not in vocab.CONFIG_STATUSES:
        raise ValueError(f"status must be one of {', '.join(vocab.CONFIG_STATUSES)}")
    return {"kiosk_id": kiosk_id, **ConfigReported(version, status, config, reason[:300]).to_dict()}


def parse_config_reported(body: dict[str, Any]) -> ConfigReported:
    version = body.get("version")
    if version is not None and (not isinstance(version, int) or isinstance(version, bool)):
        raise RemoteProtocolError("config/reported version must be an integer")
    status = body.get("status")
    if status not in vocab.CONFIG_STATUSES:
        raise RemoteProtocolError(f"config/reported status must be applied or rejected, got {str(status)[:32]!r}")
    config = body.get("config")
    return ConfigReported(version, status, config if isinstance(config, dict) else {}, _str(body, "reason", 300))
