"""Pure decisions of the controller: ``(state, message, now) -> (state, [outgoing])``.

No I/O here; the server applies the outgoing messages and persists the kiosks marked dirty.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from controller.protocol.fleet import Parsed


@dataclass
class Outgoing:
    topic: str
    body: dict[str, Any]
    qos: int = 1
    retain: bool = False


@dataclass
class FleetState:
    kiosks: dict[str, dict[str, Any]] = field(default_factory=dict)
    dirty: set[str] = field(default_factory=set)
    telemetry_period: float = 30.0
    stale_after_periods: int = 3


def _record(state: FleetState, kiosk_id: str, now: float) -> dict[str, Any]:
    rec = state.kiosks.get(kiosk_id)
    if rec is None:
        rec = {"kiosk_id": kiosk_id, "state": "unknown", "reason": "", "last_seen": now, "state_since": now,
               "site": "", "mode": "", "boot_id": "", "versions": {}, "devices": {}}
        state.kiosks[kiosk_id] = rec
    return rec


def _set_state(rec: dict[str, Any], new: str, reason: str, now: float) -> None:
    if rec["state"] != new:
        rec["state_since"] = now
    rec["state"] = new
    rec["reason"] = reason


def handle(state: FleetState, msg: Parsed, now: float) -> tuple[FleetState, list[Outgoing]]:
    rec = _record(state, msg.kiosk_id, now)
    body = msg.body
    if msg.kind == "status":
        if body["state"] == "online":
            _set_state(rec, "online", "", now)
            rec["mode"] = str(body.get("mode", "normal"))
            rec["boot_id"] = str(body.get("boot_id", ""))
            rec["site"] = str(body.get("site", rec["site"]))
            versions = body.get("versions")
            rec["versions"] = versions if isinstance(versions, dict) else {}
            rec["last_seen"] = now
        else:
            _set_state(rec, "offline", str(body.get("reason", "")), now)
    elif msg.kind == "telemetry":
        rec["last_seen"] = now
        if rec["state"] in ("stale", "unknown"):
            _set_state(rec, "online", "", now)
        devices = body.get("devices")
        if isinstance(devices, dict):
            rec["devices"] = devices
    state.dirty.add(msg.kiosk_id)
    return state, []


def tick(state: FleetState, now: float) -> tuple[FleetState, list[Outgoing]]:
    """Mark online kiosks stale after ``stale_after_periods`` telemetry periods of silence."""
    limit = state.telemetry_period * state.stale_after_periods
    for kiosk_id, rec in state.kiosks.items():
        if rec["state"] == "online" and now - rec["last_seen"] > limit:
            _set_state(rec, "stale", f"no telemetry for {now - rec['last_seen']:.0f} s", now)
            state.dirty.add(kiosk_id)
    return state, []
