"""Config editor helpers: parse what an operator typed, and show a key-by-key diff before applying."""

from __future__ import annotations

import json
from typing import Any

from foundation.errors import ConfigError

MAX_DEPTH = 6


def parse_json_object(text: str) -> dict[str, Any]:
    """Parse the editor's text; the error names the line and column."""
    try:
        value = json.loads(text)
    except json.JSONDecodeError as exc:
        raise ConfigError(f"not valid JSON at line {exc.lineno}, column {exc.colno}: {exc.msg}") from None
    if not isinstance(value, dict):
        raise ConfigError("the configuration must be a JSON object of settings")
    return value


def flatten(obj: dict[str, Any], prefix: str = "", depth: int = 0) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, val in obj.items():
        name = f"{prefix}{key}"
        if isinstance(val, dict) and val and depth < MAX_DEPTH:
            out.update(flatten(val, name + ".", depth + 1))
        else:
            out[name] = val
    return out


def diff(old: dict[str, Any], new: dict[str, Any]) -> list[dict[str, Any]]:
    """Changes from ``old`` to ``new`` as ``{"key", "op": add|remove|change, "old", "new"}``, sorted by key."""
    a, b = flatten(old or {}), flatten(new or {})
    out = []
    for key in sorted(set(a) | set(b)):
        if key not in a:
            out.append({"key": key, "op": "add", "old": None, "new": b[key]})
        elif key not in b:
            out.append({"key": key, "op": "remove", "old": a[key], "new": None})
        elif a[key] != b[key]:
            out.append({"key": key, "op": "change", "old": a[key], "new": b[key]})
    return out
