"""Fleet commands on the controller side: creation, signing and the status life cycle.

queued -> sent -> succeeded | failed | rejected | expired | timed_out. A command is published
only while its kiosk is online; one still queued at its expiry becomes ``expired`` (never shown
as delivered). One that was sent but got no result within its timeout becomes ``timed_out``.
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Callable
from typing import Any

from contract import topics
from foundation.errors import ConfigError
from foundation.settings import check_kiosk_id

BUILT_IN = ("reboot", "restart_app", "set_mode", "test_print", "power_cycle", "collect_diagnostics",
            "reload_config")
OPEN = ("queued", "sent")
FINAL = ("succeeded", "failed", "rejected", "expired", "timed_out")
RESULT_TO_STATUS = {"ok": "succeeded", "error": "failed", "rejected": "rejected", "expired": "expired"}
_NAME = re.compile(r"^[a-z][a-z0-9_]{0,31}$")
DEFAULT_TTL = 300.0
DEFAULT_TIMEOUT = 60.0


def new_command(kiosk_id: str, name: str, args: Any, issuer: str, now: float, *, ttl: float = DEFAULT_TTL,
                timeout: float = DEFAULT_TIMEOUT, make_id: Callable[[], str] = lambda: uuid.uuid4().hex,
                command_id: str | None = None) -> dict[str, Any]:
    """A queued command record; raise ConfigError naming a bad kiosk id, name, args or ttl."""
    check_kiosk_id(kiosk_id)
    if not isinstance(name, str) or not _NAME.match(name):
        raise ConfigError(f"command names are 1-32 lowercase letters, digits or _, got {name!r}", field="name")
    if not isinstance(args, dict):
        raise ConfigError(f"arguments must be a JSON object, got {args!r}", field="args")
    if not isinstance(issuer, str) or not issuer:
        raise ConfigError("who issues the command must be named", field="issuer")
    if not 1 <= ttl <= 86400:
        raise ConfigError(f"time to live must be 1 s to 1 day, got {ttl!r}", field="ttl")
    cid = command_id or make_id()
    if not re.match(r"^[A-Za-z0-9_-]{8,64}$", cid):
        raise ConfigError(f"bad command id {cid!r}", field="id")
    return {"id": cid, "kiosk_id": kiosk_id, "name": name, "args": args, "issuer": issuer[:64],
            "issued_at": now, "expires_at": now + ttl, "timeout": timeout, "status": "queued"}


def wire_body(cmd: dict[str, Any]) -> dict[str, Any]:
    """The unsigned body published on ``cmd/{name}`` (``v`` included, as it is signed too)."""
    return {"v": topics.VERSION, "id": cmd["id"], "kiosk_id": cmd["kiosk_id"], "name": cmd["name"],
            "issued_at": cmd["issued_at"], "expires_at": cmd["expires_at"], "issuer": cmd["issuer"],
            "args": cmd["args"]}
