"""Desired config layered fleet -> site -> kiosk, pure.

Layers are stored by scope (``fleet``, ``site:{site}``, ``kiosk:{kiosk_id}``), each with a version
drawn from one fleet-wide counter, so a kiosk's desired version (the highest of its layers)
grows whenever any layer it inherits changes.
"""

from __future__ import annotations

from typing import Any

from contract import desired_config
from foundation.errors import ConfigError
from foundation.settings import check_kiosk_id

Layers = dict[str, dict[str, Any]]  # scope -> {"version", "body", ...}


def parse_scope(scope: str) -> str:
    """Normalise and check a scope; raise ConfigError naming what is wrong."""
    if scope == "fleet":
        return scope
    kind, _, name = scope.partition(":")
    if kind not in ("site", "kiosk") or not name:
        raise ConfigError(f"scope must be fleet, site:NAME or kiosk:ID, got {scope!r}", field="scope")
    if kind == "kiosk":
        check_kiosk_id(name)
    elif len(name) > 64 or "/" in name:
        raise ConfigError(f"bad site name {name!r}", field="scope")
    return scope


def scopes_for(kiosk_id: str, site: str) -> list[str]:
    return ["fleet", f"site:{site}", f"kiosk:{kiosk_id}"]


def desired_for(layers: Layers, kiosk_id: str, site: str, *, time_zone: str) -> tuple[int, dict[str, Any]]:
    """(version, merged config) for one kiosk; version 0 means no layer applies. The fleet's
    ``time_zone`` (the controller's setting) rides with every config, so no kiosk's receipts
    disagree with the console."""
    present = [layers[s] for s in scopes_for(kiosk_id, site) if s in layers]
    if not present:
        return 0, {}
    merged = desired_config.merge(*(p["body"] for p in present))
    return max(int(p["version"]) for p in present), {**merged, "time_zone": time_zone}


def affected(scope: str, kiosks: dict[str, dict[str, Any]]) -> list[str]:
    """Kiosk ids whose desired config depends on ``scope``."""
    if scope == "fleet":
        return sorted(kiosks)
    kind, _, name = scope.partition(":")
    if kind == "site":
        return sorted(k for k, rec in kiosks.items() if rec.get("site") == name)
    return [name]


def validate_layer(body: Any) -> dict[str, Any]:
    if isinstance(body, dict) and "time_zone" in body:
        raise ConfigError("is the controller's time_zone setting (its config file), the same for every kiosk; "
                          "it is not set per layer", field="time_zone")
    return desired_config.validate(body)


def diff_for(layers: Layers, kiosk: dict[str, Any], *, time_zone: str) -> dict[str, Any]:
    """Desired versus reported for one kiosk record."""
    version, desired = desired_for(layers, kiosk["kiosk_id"], kiosk.get("site", ""), time_zone=time_zone)
    reported = kiosk.get("reported") or {}
    config = reported.get("config")
    applied: dict[str, Any] = config if isinstance(config, dict) else {}
    return {
        "kiosk_id": kiosk["kiosk_id"],
        "desired_version": version,
        "reported_version": reported.get("version"),
        "reported_status": reported.get("status", ""),
        "reason": reported.get("reason", ""),
        "in_sync": (version == 0 and not reported)
        or (reported.get("version") == version and reported.get("status") == "applied"),
        "differences": desired_config.diff(desired, applied),
    }
