"""Alarm rules as data (``alarm_rules.toml``) and their pure evaluation.

An alarm is identified by ``(kiosk_id, rule_id, subject)`` (subject: the device name, or empty).
``evaluate`` compares a source's current values with the rules and the set of open alarms and
returns what to raise and what to clear; the caller persists both, so raising and clearing is
automatic and every change lands in the alarm history.
"""

from __future__ import annotations

import fnmatch
import tomllib
from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path
from typing import Any

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

    def matches(self, data: dict[str, Any], raised: bool) -> bool:
        limit = self.clear_value if raised and self.clear_value is not None else self.value
        try:
            return bool(OPS[self.op](data.get(self.field), limit))
        except TypeError:
            return False

    def describe(self, data: dict[str, Any]) -> str:
        return self.message.format_map(defaultdict(lambda: "?", data))[:300]


@dataclass(frozen=True)
class Change:
    action: str  # raise or clear
    key: AlarmKey
    severity: str
    message: str


def load_rules(path: str | Path = RULES_FILE) -> tuple[Rule, ...]:
    """Read and check the rules file; errors name the rule and field."""
    try:
        data = tomllib.loads(Path(path).read_text(encoding="utf-8"))
    except (OSError, tomllib.TOMLDecodeError) as exc:
        raise ConfigError(f"cannot read alarm rules: {exc}", path=str(path)) from None
    rules = []
    known = set(Rule.__dataclass_fields__)
    for i, raw in enumerate(data.get("rule", [])):
        where = f"rule[{i}]"
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
        rules.append(Rule(**raw))
    if len({r.id for r in rules}) != len(rules):
        raise ConfigError("rule ids must be unique", path=str(path))
    return tuple(rules)


def evaluate(rules: tuple[Rule, ...], source: str, kiosk_id: str, subject: str, data: dict[str, Any],
             open_keys: set[AlarmKey] | dict[AlarmKey, Any]) -> list[Change]:
    """Changes for one kiosk/device/telemetry source whose current values are ``data``."""
    out = []
    ctx = {**data, "device": subject, "kiosk_id": kiosk_id}
    for rule in rules:
        if rule.source != source or (source == "device" and not fnmatch.fnmatchcase(subject, rule.device)):
            continue
        key = (kiosk_id, rule.id, subject)
        raised = key in open_keys
        now_on = rule.matches(data, raised)
        if now_on and not raised:
            out.append(Change("raise", key, rule.severity, rule.describe(ctx)))
        elif raised and not now_on:
            out.append(Change("clear", key, rule.severity, rule.describe(ctx)))
    return out


def evaluate_event(rules: tuple[Rule, ...], kiosk_id: str, event: dict[str, Any],
                   open_keys: set[AlarmKey] | dict[AlarmKey, Any]) -> list[Change]:
    out = []
    etype = event.get("type")
    subject = str(event.get("device", ""))[:64]
    for rule in rules:
        if rule.source != "event":
            continue
        key = (kiosk_id, rule.id, subject)
        if rule.event == etype and key not in open_keys:
            out.append(Change("raise", key, rule.severity, rule.describe({**event, "device": subject})))
        elif rule.clear_event and rule.clear_event == etype and key in open_keys:
            out.append(Change("clear", key, rule.severity, rule.describe(event)))
    return out


def expired(rules: tuple[Rule, ...], open_alarms: dict[AlarmKey, dict[str, Any]], now: float) -> list[Change]:
    """Event alarms whose ``clear_after`` has passed."""
    by_id = {r.id: r for r in rules}
    out = []
    for key, alarm in open_alarms.items():
        rule = by_id.get(key[1])
        if rule and rule.source == "event" and rule.clear_after and now - alarm["raised_at"] >= rule.clear_after:
            out.append(Change("clear", key, rule.severity, alarm.get("message", "")))
    return out
