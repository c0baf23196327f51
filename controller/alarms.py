"""Alarm rules as data (``alarm_rules.toml``) and their pure evaluation.

An alarm is identified by ``(kiosk_id, rule_id, subject)`` (subject: the device name, or empty).
``evaluate`` compares a source's parsed model (the contract's ``DeviceStatus``, ``Telemetry``,
``Event``, or the controller's own kiosk record) with the rules and the set of open alarms and
returns what to raise and what to clear; the caller persists both, so raising and clearing is
automatic and every change lands in the alarm history.

One fault, one alarm: a rule marked ``fallback`` (``device_error``) fires only while no other rule
of its source matches the same subject, so a printer out of paper raises ``paper_out`` alone.
A change carries its rule id and the rule's ``params`` (plain values), so the console translates
the message; ``message`` is the English rendering for logs and ``kioskctl``.
"""

from __future__ import annotations

import fnmatch
import tomllib
from collections import defaultdict
from collections.abc import Collection
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

from foundation.errors import ConfigError

RULES_FILE = Path(__file__).with_name("alarm_rules.toml")
SOURCES = ("kiosk", "device", "telemetry", "event")
SEVERITIES = ("critical", "major", "minor", "warning")
OPS = {
    "eq": lambda a, b: a == b,
    "ne": lambda a, b: a != b,
    "in": lambda a, b: a in b,
    "gt": lambda a, b: _num(a) and a > b,
    "ge": lambda a, b: _num(a) and a >= b,
    "lt": lambda a, b: _num(a) and a < b,
    "le": lambda a, b: _num(a) and a <= b,
    "true": lambda a, b: a is True,
}

AlarmKey = tuple[str, str, str]  # kiosk_id, rule id, subject


class Source(Protocol):
    """What a rule reads: a parsed model (or the kiosk record) with fields by name."""

    def get(self, name: str, /) -> Any: ...


def _num(v: Any) -> bool:
    return isinstance(v, int | float) and not isinstance(v, bool)


@dataclass(frozen=True)
class Rule:
    id: str
    severity: str
    source: str
    message: str
    field: str = ""
    op: str = "eq"
    value: Any = None
    clear_value: Any = None
    device: str = "*"
    event: str = ""
    clear_after: float = 0.0
    clear_event: str = ""
    fallback: bool = False  # only while no other rule of this source matches the subject
    params: tuple[str, ...] = ()  # fields of the source the message names, besides device
    hold: float = 0.0  # seconds the condition must stay true before the alarm rises (`for` in the file)

    def matches(self, data: Source, raised: bool) -> bool:
        limit = self.clear_value if raised and self.clear_value is not None else self.value
        try:
            return bool(OPS[self.op](data.get(self.field), limit))
        except TypeError:
            return False

    def parameters(self, data: Source, subject: str) -> dict[str, str | int | float | bool | None]:
        out: dict[str, str | int | float | bool | None] = {"device": subject} if subject else {}
        for name in self.params:
            value = data.get(name)
            out[name] = value if value is None or isinstance(value, str | int | float | bool) else str(value)[:64]
        return out

    def describe(self, params: dict[str, Any]) -> str:
        return self.message.format_map(defaultdict(lambda: "?", params))[:300]


@dataclass(frozen=True)
class Change:
    action: str  # raise or clear; hold or release: a held condition starts or ends (see module doc)
    key: AlarmKey
    severity: str
    message: str  # English rendering of the rule's message with params (logs, kioskctl)
    params: dict[str, Any] | None = None  # the rule's parameters; with the rule id, what the console translates


def load_rules(path: str | Path = RULES_FILE) -> tuple[Rule, ...]:
    """Read and check the rules file; errors name the rule and field."""
    try:
        data = tomllib.loads(Path(path).read_text(encoding="utf-8"))
    except (OSError, tomllib.TOMLDecodeError) as exc:
        raise ConfigError(f"cannot read alarm rules: {exc}", path=str(path)) from None
    rules = []
    known = set(Rule.__dataclass_fields__) - {"hold"} | {"for"}
    for i, raw in enumerate(data.get("rule", [])):
        where = f"rule[{i}]"
        raw = dict(raw)
        unknown = set(raw) - known
        if unknown:
            raise ConfigError(f"unknown keys {sorted(unknown)}", field=where, path=str(path))
        for req in ("id", "severity", "source", "message"):
            if not isinstance(raw.get(req), str):
                raise ConfigError(f"needs a string {req}", field=where, path=str(path))
        if raw["source"] not in SOURCES:
            raise ConfigError(f"source must be one of {SOURCES}", field=f"{where}.source", path=str(path))
        if raw["severity"] not in SEVERITIES:
            raise ConfigError(f"severity must be one of {SEVERITIES}", field=f"{where}.severity", path=str(path))
        if raw["source"] != "event" and (not raw.get("field") or raw.get("op", "eq") not in OPS):
            raise ConfigError(f"needs a field and an op of {sorted(OPS)}", field=where, path=str(path))
        if raw["source"] == "event" and not raw.get("event"):
            raise ConfigError("an event rule needs an event type", field=where, path=str(path))
        if not isinstance(raw.get("params", []), list):
            raise ConfigError("params must be a list of field names", field=f"{where}.params", path=str(path))
        hold = raw.pop("for", 0.0)
        if isinstance(hold, bool) or not isinstance(hold, int | float) or not 0 <= hold <= 86400:
            raise ConfigError("for must be a number of seconds (0 to 86400)", field=f"{where}.for", path=str(path))
        if hold and raw["source"] == "event":
            raise ConfigError("an event rule cannot hold (use clear_after)", field=f"{where}.for", path=str(path))
        rules.append(Rule(**{**raw, "params": tuple(raw.get("params", ())), "hold": float(hold)}))
    if len({r.id for r in rules}) != len(rules):
        raise ConfigError("rule ids must be unique", path=str(path))
    return tuple(rules)


class RuleSet:
    """The rules pre-filtered once: per source, and per device name as names are met, so one
    message is compared with its own source's rules only (every telemetry message used to filter
    the whole list and glob-match device names again)."""

    MAX_SUBJECTS = 1024  # device names remembered; a kiosk inventing names must not grow this

    def __init__(self, rules: tuple[Rule, ...]) -> None:
        self.rules = rules
        self.by_source = {s: tuple(r for r in rules if r.source == s) for s in SOURCES}
        self.by_id = {r.id: r for r in rules}
        self.timed = frozenset(r.id for r in self.by_source["event"] if r.clear_after)
        # The event types some rule raises or clears on: an event of another type decides nothing.
        self.event_types = frozenset(t for r in self.by_source["event"] for t in (r.event, r.clear_event) if t)
        self._devices: dict[str, tuple[Rule, ...]] = {}

    def of(self, source: str, subject: str) -> tuple[Rule, ...]:
        if source != "device":
            return self.by_source.get(source, ())
        mine = self._devices.get(subject)
        if mine is None:
            mine = tuple(r for r in self.by_source["device"] if fnmatch.fnmatchcase(subject, r.device))
            if len(self._devices) < self.MAX_SUBJECTS:
                self._devices[subject] = mine
        return mine


Rules = tuple[Rule, ...] | RuleSet


def indexed(rules: Rules) -> RuleSet:
    return rules if isinstance(rules, RuleSet) else RuleSet(rules)


def evaluate(rules: Rules, source: str, kiosk_id: str, subject: str, data: Source,
             open_keys: set[AlarmKey] | dict[AlarmKey, Any], held: Collection[AlarmKey] = ()) -> list[Change]:
    """Changes for one kiosk/device/telemetry source whose parsed current values are ``data``;
    ``held``: the keys whose rule's hold is running (see the module doc)."""
    mine = indexed(rules).of(source, subject)
    if not mine:
        return []
    raised = [(kiosk_id, r.id, subject) in open_keys for r in mine]
    on = [r.matches(data, up) for r, up in zip(mine, raised, strict=True)]
    specific = any(o for r, o in zip(mine, on, strict=True) if not r.fallback)
    out = []
    for rule, was, hit in zip(mine, raised, on, strict=True):
        key = (kiosk_id, rule.id, subject)
        now_on = hit and not (rule.fallback and specific)
        if now_on and not was:
            action = "hold" if rule.hold and key not in held else "" if rule.hold else "raise"
        elif was and not now_on:
            action = "clear"
        else:
            action = "release" if not now_on and key in held else ""
        if action:
            params = rule.parameters(data, subject)
            out.append(Change(action, key, rule.severity, rule.describe(params), params))
    return out


def held_due(rules: Rules, held: dict[AlarmKey, dict[str, Any]],
             open_keys: set[AlarmKey] | dict[AlarmKey, Any], now: float) -> list[Change]:
    """Held conditions whose rule's hold has passed by ``now``: raise them. ``held`` maps each key to
    what its ``hold`` change carried (``since``, ``severity``, ``message``, ``params``). A hold whose
    rule is gone, or holds no more, is released."""
    by_id = indexed(rules).by_id
    out = []
    for key, h in held.items():
        rule = by_id.get(key[1])
        if rule is None or not rule.hold or key in open_keys:
            out.append(Change("release", key, h.get("severity", ""), h.get("message", "")))
        elif now - h["since"] >= rule.hold:
            out.append(Change("raise", key, rule.severity, h.get("message", ""), h.get("params") or {}))
    return out


def evaluate_event(rules: Rules, kiosk_id: str, event: Source,
                   open_keys: set[AlarmKey] | dict[AlarmKey, Any]) -> list[Change]:
    out = []
    etype = event.get("type")
    subject = str(event.get("device") or "")[:64]
    for rule in indexed(rules).by_source["event"]:
        key = (kiosk_id, rule.id, subject)
        if rule.event == etype and key not in open_keys:
            params = rule.parameters(event, subject)
            out.append(Change("raise", key, rule.severity, rule.describe(params), params))
        elif rule.clear_event and rule.clear_event == etype and key in open_keys:
            params = rule.parameters(event, subject)
            out.append(Change("clear", key, rule.severity, rule.describe(params), params))
    return out


def expired(rules: Rules, open_alarms: dict[AlarmKey, dict[str, Any]], now: float) -> list[Change]:
    """Event alarms whose ``clear_after`` has passed."""
    index = indexed(rules)
    if not index.timed:
        return []
    out = []
    for key, alarm in open_alarms.items():
        if key[1] in index.timed:
            rule = index.by_id[key[1]]
            if now - alarm["raised_at"] >= rule.clear_after:
                out.append(Change("clear", key, rule.severity, alarm.get("message", "")))
    return out
