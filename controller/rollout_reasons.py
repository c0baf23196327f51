"""Why a roll-out or one of its kiosks is where it is, as data: ``{"code": id, "params": {...}}``.

The decisions (:mod:`controller.rollouts`) write a reason code and its parameters (plain numbers
and short strings), never a sentence; the console and kioskctl turn it into the operator's
language from the console's catalogues (``roreason.<code>``, ``updatereason.<id>``: see
``controller.web.i18n.Translator.rollout_reason``), the way alarms carry a rule id and params.

Codes: the ones in :data:`CODES`, plus ``kiosk`` (what the kiosk reported on ``update/state``:
params ``id``, an id of ``contract.updates.REASONS`` or one this version does not know, and
``detail``, the kiosk's own words) and ``text`` (a reason stored as a sentence before these codes,
param ``text``, shown as it is). :func:`normalize` reads every stored form, so roll-outs written
by an older controller still show.
"""

from __future__ import annotations

import re
from typing import Any

from contract import updates
from foundation.errors import ConfigError

# code -> the parameters its text names
CODES: dict[str, tuple[str, ...]] = {
    "no_targets": (),
    "error_threshold": ("wave", "failed", "counted", "threshold", "min", "limit"),
    "success_threshold": ("wave", "succeeded", "counted", "threshold"),
    "failure_budget": ("failed", "targets", "budget", "limit"),
    "awaiting_approval": ("wave",),
    "paused_by_operator": ("note",),
    "aborted_by_operator": ("note",),
    "offline": (),
    "timed_out": ("timeout",),
    "rollout_aborted": (),
    "retry": (),
    "kiosk": ("id", "detail"),
    "text": ("text",),
}
SHARES = frozenset({"threshold", "budget"})
# Why an operator's action on a roll-out was refused: code -> its parameters. The audit log keeps
# ``refused: <code>`` with the parameters as its detail; the console words them from its
# catalogues (``auditresult.<code>``; the parameters as fields: ``rollouts.action.*``,
# ``rollouts.status.*``), as other audit rows.
REFUSALS: dict[str, tuple[str, ...]] = {
    "not_in_status": ("rollout_action", "rollout_status"),
    "nothing_to_retry": (),
    "unknown_action": ("rollout_action",),
    "no_rollout": (),
}  # parameters that are fractions, shown as percentages
Reason = dict[str, Any]
MAX_TEXT = 300


class Refused(ConfigError):
    """An operator's action a roll-out cannot take now: ``code`` (one of :data:`REFUSALS`) and its
    ``params`` for the audit log and the console; the message (English) for kioskctl and logs."""

    def __init__(self, code: str, message: str, *, field: str, **params: str) -> None:
        if code not in REFUSALS or set(params) != set(REFUSALS[code]):
            raise ValueError(f"refusal {code!r} with params {sorted(params)} is not one of {sorted(REFUSALS)}")
        super().__init__(message, field=field)
        self.code = code
        self.params = params


def make(code: str, **params: str | int | float) -> Reason:
    """A reason; raises ValueError on a code or parameter the catalogues do not know."""
    if code not in CODES or set(params) - set(CODES[code]):
        raise ValueError(f"roll-out reason {code!r} with params {sorted(params)} is not one of {sorted(CODES)}")
    return {"code": code, "params": params}


def from_kiosk(text: str) -> Reason:
    """What a kiosk reported (``update/state`` reason, already parsed by the contract)."""
    if not text:
        return {}
    rid, detail = updates.reason_id(text)
    return make("kiosk", id=rid, detail=detail[:MAX_TEXT])


def operator(code: str, note: str) -> Reason:
    return make(code, note=note[:MAX_TEXT]) if note else make(code)


# Sentences the decisions wrote before reason codes, read back as the codes they mean.
_LEGACY = (
    (re.compile(r"^wave (\d+): (\d+) of (\d+) kiosks failed \(error threshold ([\d.]+)% of the wave, at least (\d+): "
                r"(\d+) kiosks\)$"), "error_threshold", ("wave", "failed", "counted", "threshold", "min", "limit")),
    (re.compile(r"^wave (\d+): (\d+) of (\d+) kiosks succeeded \(success threshold ([\d.]+)%\)$"), "success_threshold",
     ("wave", "succeeded", "counted", "threshold")),
    (re.compile(r"^wave (\d+) waits for approval$"), "awaiting_approval", ("wave",)),
    (re.compile(r"^no final state (\d+) s after it was sent$"), "timed_out", ("timeout",)),
)
_LEGACY_FIXED = {"no targeted kiosk is online on an older release": "no_targets", "paused by an operator":
                 "paused_by_operator", "aborted by an operator": "aborted_by_operator",
                 "offline when its wave started": "offline", "roll-out aborted": "rollout_aborted", "retry": "retry"}


def _legacy(text: str, kiosk_state: str) -> Reason:
    if text in _LEGACY_FIXED:
        return make(_LEGACY_FIXED[text])
    for pattern, code, names in _LEGACY:
        m = pattern.match(text)
        if m:
            values: list[int | float] = [int(v) if v.isdigit() else float(v) for v in m.groups()]
            params = dict(zip(names, values, strict=True))
            if "threshold" in params:
                params["threshold"] = round(params["threshold"] / 100, 6)
            return make(code, **params)
    if kiosk_state in updates.NEED_REASON:
        return from_kiosk(text)
    return make("text", text=text[:MAX_TEXT])


def normalize(value: object, kiosk_state: str = "") -> Reason:
    """A stored reason in its current form: ``{}`` for none. Reads a reason dict, a JSON column
    value, or a sentence an older controller wrote (``kiosk_state``: the kiosk's, for its row)."""
    if value is None or value == "" or value == {}:
        return {}
    if isinstance(value, dict):
        code, params = value.get("code"), value.get("params")
        if code in CODES and isinstance(params, dict):
            return {"code": code, "params": {str(k): v for k, v in params.items()
                                             if isinstance(v, str | int | float) and not isinstance(v, bool)}}
        return make("text", text=str(value)[:MAX_TEXT])
    return _legacy(str(value), kiosk_state)
