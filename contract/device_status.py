"""One device status for every path: ``kiosk/v1/{id}/devices/{name}`` (QoS 1, retained).

The device manager (Kivy kiosk), the headless runtime and the supervisor integration all build a
:class:`DeviceStatus` through :func:`build` from the UnifiedPOS state and the CEN/XFS-style detail
they already know; :func:`build` derives the one most specific ``fault`` and the technician's
``required_action`` (an id of :data:`contract.vocab.REQUIRED_ACTIONS`, or ``None``) so no producer
decides those on its own. The controller reads every version of the payload through :func:`parse`.

Wire form (contract 1.1; ``ts`` and ``boot_id`` optional, see :func:`body`)::

    {"v": "1.1", "kiosk_id": "GD-0001", "state": "error", "fault": "paper_out",
     "required_action": "load_paper",
     "detail": {"connection": "connected", "paper": "out", "cover": "closed", "cutter": "ok"},
     "ts": 1764000000.25, "boot_id": "9f..."}
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, fields, replace
from typing import Any

from contract import vocab
from foundation.errors import RemoteProtocolError

# printer driver words (ok/low/out) -> CEN/XFS paper states
_PAPER_FROM_DRIVER = {"ok": "full", "low": "low", "out": "out", "unknown": "unknown"}


@dataclass(frozen=True)
class DeviceDetail:
    """CEN/XFS-style detail; a field a device does not have stays ``None`` (and off the wire)."""

    connection: str | None = None  # connected / disconnected
    paper: str | None = None  # full / low / out / jammed / unknown
    cover: str | None = None  # open / closed / unknown (supervisor: the enclosure door)
    cutter: str | None = None  # ok / error / unknown
    media: str | None = None  # card readers: present / not_present / unknown
    error: str | None = None  # the driver's last error code (a fault word), if any
    tamper: bool | None = None  # supervisor
    temperature: float | None = None  # supervisor: enclosure °C
    safe_mode: bool | None = None  # supervisor
    hold_s: int | None = None  # supervisor: watchdog maintenance hold left

    def to_dict(self) -> dict[str, Any]:
        return {k: v for k, v in asdict(self).items() if v is not None}


@dataclass(frozen=True)
class DeviceStatus:
    state: str  # vocab.DEVICE_STATES
    detail: DeviceDetail
    fault: str  # vocab.FAULTS: the one most specific fault, "" when none
    required_action: str | None  # vocab.REQUIRED_ACTIONS, None when nothing is to be done
    # Where the report stands in the kiosk's order (read by the controller, never built by a
    # producer: :func:`body` adds them at publishing); None / "" from a kiosk older than the fields.
    ts: float | None = None
    boot_id: str = ""

    def get(self, name: str, default: Any = None) -> Any:
        """A field by name, the detail's included (``paper``, ``cover``, ``tamper``...): what the
        alarm rules read."""
        if name in ("state", "fault", "required_action"):
            return getattr(self, name)
        return getattr(self.detail, name, default) if name in _DETAIL_FIELDS else default

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready body without ``v`` and ``kiosk_id`` (see :func:`body`)."""
        return {"state": self.state, "fault": self.fault, "required_action": self.required_action,
                "detail": self.detail.to_dict()}


_DETAIL_FIELDS = {f.name for f in fields(DeviceDetail)}


def printer_detail(*, known: bool, paper: str = "unknown", cover_open: bool | None = None,
                   cutter_error: bool | None = None, online: bool | None = None,
                   unrecoverable_error: bool | None = None, connected: bool = True) -> DeviceDetail:
    """Detail of an ESC/POS printer from what its status query said (``paper``: ok/low/out/unknown)."""
    if not connected:
        return DeviceDetail(connection="disconnected", paper="unknown", cover="unknown", cutter="unknown")
    if not known:
        return DeviceDetail(connection="connected", paper="unknown", cover="unknown", cutter="unknown",
                            error="not_answering")
    error = ("unrecoverable_error" if unrecoverable_error else "offline" if online is False else None)
    return DeviceDetail(connection="connected",
                        paper="jammed" if cutter_error else _PAPER_FROM_DRIVER.get(paper, "unknown"),
                        cover="open" if cover_open else "closed", cutter="error" if cutter_error else "ok",
                        error=error)


def supervisor_detail(*, door_open: bool | None, tamper: bool, celsius: float | None, safe_mode: bool | None,
                      hold_s: int | None) -> DeviceDetail:
    """Detail of the supervisor board from its status frame."""
    return DeviceDetail(cover="open" if door_open else "closed" if door_open is False else "unknown",
                        tamper=bool(tamper), temperature=celsius, safe_mode=safe_mode, hold_s=hold_s)


def _fault_and_action(state: str, d: DeviceDetail) -> tuple[str, str | None]:
    if d.connection == "disconnected":
        return "disconnected", "check_connection"
    if d.tamper:
        return "tamper", "inspect_enclosure"
    if d.error == "not_answering" or state == "unknown":
        return "not_answering", ("check_printer_power" if d.paper is not None else "check_device")
    if d.paper is not None:  # a printer: the cover first (paper cannot be loaded with it shut)
        if d.cover == "open":
            return "cover_open", "close_cover"
        if d.paper == "out":
            return "paper_out", "load_paper"
        if d.paper == "jammed":
            return "paper_jammed", "clear_jam"
    if d.error == "sam":
        return "sam", "replace_id_reader"
    if d.error or state == "error":
        fault = d.error if d.error in vocab.FAULTS else "unknown"
        return fault, "check_device"
    if d.paper == "low":
        return "", "bring_paper"
    return "", None


def build(state: str, detail: DeviceDetail) -> DeviceStatus:
    """The one builder: state + detail -> status with its fault and required action."""
    if state not in vocab.DEVICE_STATES:
        raise ValueError(f"device state must be one of {', '.join(vocab.DEVICE_STATES)}, got {state!r}")
    fault, action = _fault_and_action(state, detail)
    if fault and state in ("idle", "busy") and fault != "tamper":
        state = "error"  # a printer with its cover open cannot serve, whatever the life cycle says
    return DeviceStatus(state, detail, fault, action)


def body(kiosk_id: str, status: DeviceStatus, *, ts: float | None = None, boot_id: str = "") -> dict[str, Any]:
    """The wire body. ``ts`` (the kiosk's clock, never going back within ``boot_id``) and
    ``boot_id`` let a reader that handles a kiosk's messages out of order keep the newer report
    (docs/mqtt.md, "devices/{name}"); both optional, older readers ignore them."""
    out = {"kiosk_id": kiosk_id, **status.to_dict()}
    if ts is not None:
        out["ts"] = ts
    if boot_id:
        out["boot_id"] = boot_id
    return out


def order_fields(raw: dict[str, Any]) -> tuple[float | None, str]:
    """The optional ``ts`` and ``boot_id`` of a kiosk's report (device status, config/reported);
    a wrong type raises RemoteProtocolError naming the field."""
    ts, boot_id = raw.get("ts"), raw.get("boot_id", "")
    if ts is not None and _num(ts) is None:
        raise RemoteProtocolError(f"ts must be a finite number of seconds, got {str(ts)[:32]!r}")
    if not isinstance(boot_id, str) or len(boot_id) > 64:
        raise RemoteProtocolError(f"boot_id must be a string of at most 64 characters, got {str(boot_id)[:32]!r}")
    return _num(ts), boot_id


# -- parsing, every version of major 1 -----------------------------------------------------------

def _word(value: Any, allowed: tuple[str, ...]) -> str | None:
    if value is None:
        return None
    # A newer minor may add words: an unknown word is read as "unknown", never as fine.
    return value if isinstance(value, str) and value in allowed else "unknown"


def _bool(value: Any) -> bool | None:
    return value if isinstance(value, bool) else None


def _num(value: Any) -> float | None:
    ok = isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)
    return float(value) if ok else None


def parse(raw: dict[str, Any]) -> DeviceStatus:
    """Validate a device status body (1.0 headless, 1.0 device-manager or 1.1 shape)."""
    state = raw.get("state")
    if not isinstance(state, str):
        raise RemoteProtocolError("device status needs a string state")
    state = state if state in vocab.DEVICE_STATES else "unknown"
    det = raw.get("detail")
    src: dict[str, Any] = dict(det) if isinstance(det, dict) else {}
    if not isinstance(det, dict):
        # 1.0 headless runtime: detail was a word (paper_out, tamper, ...), the rest top level.
        for key in ("paper", "cover", "tamper", "temperature", "safe_mode", "hold_s"):
            if key in raw:
                src[key] = raw[key]
        if isinstance(det, str) and det in vocab.FAULTS and det:
            src["error"] = det
            # The word alone says what the fields would: keep it when the fields are missing.
            implied = {"paper_out": ("paper", "out"), "cover_open": ("cover", "open"), "tamper": ("tamper", True)}
            if det in implied:
                src.setdefault(*implied[det])
        if src.get("paper") == "ok":
            src["paper"] = "full"
        if state == "unknown" and "paper" in src:
            src["error"] = "not_answering"
    error = src.get("error")
    hold = _num(src.get("hold_s"))
    detail = DeviceDetail(
        connection=_word(src.get("connection"), vocab.CONNECTION), paper=_word(src.get("paper"), vocab.PAPER),
        cover=_word(src.get("cover"), vocab.COVER), cutter=_word(src.get("cutter"), ("ok", "error", "unknown")),
        media=_word(src.get("media"), vocab.MEDIA),
        error=(error if error in vocab.FAULTS else "unknown") if isinstance(error, str) and error else None,
        tamper=_bool(src.get("tamper")), temperature=_num(src.get("temperature")),
        safe_mode=_bool(src.get("safe_mode")), hold_s=int(hold) if hold is not None else None)
    if detail.error in ("paper_out", "cover_open", "tamper"):
        detail = replace(detail, error=None)  # 1.0 sent the fault word too; paper/cover/tamper say it
    ts, boot_id = order_fields(raw)
    return replace(build(state, detail), ts=ts, boot_id=boot_id)
