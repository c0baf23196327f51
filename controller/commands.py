"""Fleet commands on the controller side: creation, signing and the status life cycle.

queued -> sent -> succeeded | failed | rejected | expired | timed_out. A command is published
only while its kiosk is online; one still queued at its expiry becomes ``expired`` (never shown
as delivered). One that was sent but got no result within its timeout becomes ``timed_out``.
The wire body is built and parsed in :mod:`contract.commands`.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from typing import Any

from contract import vocab
from contract.commands import ID, NAME
from foundation.errors import ConfigError
from foundation.settings import check_kiosk_id

BUILT_IN = vocab.COMMANDS
OPEN = ("queued", "sent")
FINAL = ("succeeded", "failed", "rejected", "expired", "timed_out")
RESULT_TO_STATUS = {"ok": "succeeded", "error": "failed", "rejected": "rejected", "expired": "expired"}
DEFAULT_TTL = 300.0
DEFAULT_TIMEOUT = 60.0


def new_command(kiosk_id: str, name: str, args: Any, issuer: str, now: float, *, ttl: float = DEFAULT_TTL,
                timeout: float = DEFAULT_TIMEOUT, make_id: Callable[[], str] = lambda: uuid.uuid4().hex,
                command_id: str | None = None) -> dict[str, Any]:
    """A queued command record; raise ConfigError naming a bad kiosk id, name, args or ttl."""
    check_kiosk_id(kiosk_id)
    if not isinstance(name, str) or not NAME.match(name):
        raise ConfigError(f"command names are 1-32 lowercase letters, digits or _, got {name!r}", field="name")
    if not isinstance(args, dict):
        raise ConfigError(f"arguments must be a JSON object, got {args!r}", field="args")
    if not isinstance(issuer, str) or not issuer:
        raise ConfigError("who issues the command must be named", field="issuer")
    if not 1 <= ttl <= 86400:
        raise ConfigError(f"time to live must be 1 s to 1 day, got {ttl!r}", field="ttl")
    cid = command_id or make_id()
    if not ID.match(cid):
        raise ConfigError(f"bad command id {cid!r}", field="id")
    return {"id": cid, "kiosk_id": kiosk_id, "name": name, "args": args, "issuer": issuer[:64],
            "issued_at": now, "expires_at": now + ttl, "timeout": timeout, "status": "queued"}
