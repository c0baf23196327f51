"""The desired-config schema, shared by the controller (validate on set) and the kiosk (validate on apply).

A config is a JSON object of known keys; layers (fleet -> site -> kiosk) are merged key by key,
a nested table merged recursively. Validation names the first wrong field, for example
``volume: must be an integer from 0 to 100, got 150``.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from foundation.errors import ConfigError


def _int_range(lo: int, hi: int) -> Callable[[Any], str | None]:
    def check(v: Any) -> str | None:
        if isinstance(v, bool) or not isinstance(v, int) or not lo <= v <= hi:
            return f"must be an integer from {lo} to {hi}, got {v!r}"
        return None
    return check


def _num_range(lo: float, hi: float) -> Callable[[Any], str | None]:
    def check(v: Any) -> str | None:
        if isinstance(v, bool) or not isinstance(v, int | float) or not lo <= v <= hi:
            return f"must be a number from {lo:g} to {hi:g}, got {v!r}"
        return None
    return check


def _one_of(*choices: str) -> Callable[[Any], str | None]:
    def check(v: Any) -> str | None:
        return None if v in choices else f"must be one of {', '.join(choices)}, got {v!r}"
    return check


def _str_list(v: Any) -> str | None:
    if not isinstance(v, list) or not all(isinstance(x, str) and 0 < len(x) <= 64 for x in v):
        return f"must be a list of names (strings of 1-64 characters), got {v!r}"
    return None


def _bool(v: Any) -> str | None:
    return None if isinstance(v, bool) else f"must be true or false, got {v!r}"


def _zone(v: Any) -> str | None:
    """An IANA zone name zoneinfo knows (``Asia/Shanghai``): the fleet's clock for receipts."""
    if not isinstance(v, str) or not 0 < len(v) <= 64:
        return f"must be an IANA time zone name such as Asia/Shanghai, got {v!r}"
    try:
        ZoneInfo(v)
    except (ZoneInfoNotFoundError, ValueError):
        return f"must be an IANA time zone name such as Asia/Shanghai, got {v!r} (unknown zone)"
    return None


def _catalogue(v: Any) -> str | None:
    """A whole service catalogue (names in three languages, identification, steps, hours)."""
    from contract.catalogue import parse

    try:
        parse(v)
    except ConfigError as exc:
        return str(exc)
    return None


# Every key a kiosk accepts, with its check. A kiosk rejects a config with any other key, so an
# operator's typo is reported instead of silently ignored.
SCHEMA: dict[str, Any] = {
    "telemetry_interval": _num_range(5, 3600),
    "language": _one_of("zh-CN", "zh-HK", "en"),
    "time_zone": _zone,  # set it at fleet scope to the controller's time_zone: one clock for the fleet
    "idle_timeout": _int_range(10, 3600),
    "volume": _int_range(0, 100),
    "brightness": _int_range(10, 100),
    "services": _str_list,
    "service_catalogue": _catalogue,
    "printer": {
        "paper_low_warning": _bool,
        "density": _int_range(1, 8),
    },
    "supervisor": {
        "watchdog_timeout": _int_range(30, 3600),
        "temperature_limit": _num_range(30, 90),
    },
}


# Keys a kiosk knows only from this contract version on. A kiosk refuses a desired config with a
# key it does not know (it names the field), so the controller leaves such keys out for kiosks
# that report an older version: a mixed fleet keeps applying its configs during a roll-out.
KEYS_SINCE: dict[str, tuple[int, int]] = {"time_zone": (1, 3)}


def for_version(config: dict[str, Any], version: tuple[int, int]) -> dict[str, Any]:
    """``config`` without the keys a kiosk on contract ``version`` does not know."""
    return {k: v for k, v in config.items() if KEYS_SINCE.get(k, (0, 0)) <= version}


def validate(config: Any, schema: dict[str, Any] | None = None, prefix: str = "") -> dict[str, Any]:
    """Return ``config`` if valid, else raise ConfigError naming the field."""
    schema = SCHEMA if schema is None else schema
    if not isinstance(config, dict):
        raise ConfigError(f"expected a table, got {config!r}", field=prefix.rstrip(".") or "config")
    for key, value in config.items():
        rule = schema.get(key)
        name = prefix + str(key)
        if rule is None:
            raise ConfigError(f"unknown setting (known: {', '.join(sorted(schema))})", field=name)
        if isinstance(rule, dict):
            validate(value, rule, name + ".")
        else:
            why = rule(value)
            if why:
                raise ConfigError(why, field=name)
    return config


def merge(*layers: dict[str, Any]) -> dict[str, Any]:
    """Merge layers left to right; later layers win, nested tables merge key by key."""
    out: dict[str, Any] = {}
    for layer in layers:
        for key, value in layer.items():
            if isinstance(value, dict) and isinstance(out.get(key), dict):
                out[key] = merge(out[key], value)
            else:
                out[key] = value
    return out


def diff(desired: dict[str, Any], reported: dict[str, Any], prefix: str = "") -> list[dict[str, Any]]:
    """Keys whose desired and reported values differ: ``[{"key", "desired", "reported"}]``."""
    out = []
    for key in sorted(set(desired) | set(reported)):
        d, r = desired.get(key), reported.get(key)
        if isinstance(d, dict) and isinstance(r, dict):
            out += diff(d, r, f"{prefix}{key}.")
        elif d != r:
            out.append({"key": prefix + key, "desired": d, "reported": r})
    return out
