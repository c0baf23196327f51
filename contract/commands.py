"""Fleet commands on the wire: ``cmd/{name}`` (QoS 1, never retained) and ``cmd/{name}/result``.

The controller builds the body with :func:`wire_body` and signs it (:mod:`contract.signing`); the
kiosk reads it with :func:`parse`, then :func:`verify` (signature, expiry, replay) and
:func:`check_args`, and answers with one :func:`result`, which the controller reads with
:func:`parse_result`. ``CommandRejected(reason, message)`` carries a stable reason of
:data:`contract.vocab.REJECT_REASONS`.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from contract import json_values, signing, updates, versions, vocab
from contract.versions import UnsupportedVersion
from foundation.errors import CommandRejected, RemoteProtocolError

NAME = re.compile(r"^[a-z][a-z0-9_]{0,31}$")
ID = re.compile(r"^[A-Za-z0-9_-]{8,64}$")

MAX_TTL = 86400.0  # a command valid longer than a day is refused: it would outlive replay memory
CLOCK_SKEW = 120.0  # commands "issued" further in the future than this are refused


@dataclass(frozen=True)
class Spec:
    required: dict[str, Callable[[Any], bool]]
    optional: dict[str, Callable[[Any], bool]]
    hint: str


def _num(lo: float, hi: float) -> Callable[[Any], bool]:
    return lambda v: isinstance(v, int | float) and not isinstance(v, bool) and lo <= v <= hi


def _name(v: Any) -> bool:
    return isinstance(v, str) and 0 < len(v) <= 32


SPECS: dict[str, Spec] = {
    "reboot": Spec({}, {"delay": _num(0, 300)}, "optional delay: seconds 0-300"),
    "restart_app": Spec({}, {}, "no arguments"),
    "set_mode": Spec({"mode": lambda v: v in vocab.COMMANDABLE_MODES}, {},
                     "mode: " + ", ".join(vocab.COMMANDABLE_MODES)),
    "test_print": Spec({}, {}, "no arguments"),
    "power_cycle": Spec({"device": _name}, {"off_seconds": _num(1, 60)},
                        "device: a device name; optional off_seconds 1-60"),
    "collect_diagnostics": Spec({}, {}, "no arguments"),
    "reload_config": Spec({}, {}, "no arguments"),
    "update": Spec(updates.UPDATE_REQUIRED, updates.UPDATE_OPTIONAL, updates.UPDATE_HINT),
    "update_rollback": Spec({"version": updates.UPDATE_REQUIRED["version"]}, {},
                            "version: the release on trial to roll back"),
}


def peek_id(payload: bytes) -> str:
    """The command id, if one can be read at all, so even a rejection names its command."""
    try:
        body = json.loads(payload.decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError, RecursionError):
        return "?"
    cid = body.get("id") if isinstance(body, dict) else None
    return cid[:64] if isinstance(cid, str) and cid else "?"


def parse(topic_name: str, payload: bytes, kiosk_id: str) -> dict[str, Any]:
    try:
        # No NaN, no lone surrogates, no nesting past the contract's limit: a rejection, not a crash.
        body = json_values.loads(payload.decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError):
        raise CommandRejected("malformed", "command is not UTF-8 JSON") from None
    except RemoteProtocolError as exc:
        raise CommandRejected("malformed", f"command refused: {str(exc)[:120]}") from None
    if not isinstance(body, dict) or not isinstance(body.get("id"), str) or not body["id"]:
        raise CommandRejected("malformed", "command needs a string id")
    name = topic_name.rsplit("/", 1)[-1]
    if body.get("name") != name:
        raise CommandRejected("malformed", f"command name {body.get('name')!r} does not match topic {name!r}")
    if body.get("kiosk_id") != kiosk_id:
        raise CommandRejected("wrong_kiosk", f"command is for kiosk {str(body.get('kiosk_id'))[:64]!r}")
    for f in ("issued_at", "expires_at"):
        if not isinstance(body.get(f), int | float) or isinstance(body.get(f), bool):
            raise CommandRejected("malformed", f"command needs a numeric {f}")
    if not isinstance(body.get("args", {}), dict):
        raise CommandRejected("bad_arguments", "args must be a JSON object")
    try:
        versions.check(body)
    except UnsupportedVersion as exc:
        raise CommandRejected("unsupported_version", str(exc)) from None
    except RemoteProtocolError as exc:
        raise CommandRejected("malformed", str(exc)) from None
    return body


def verify(body: dict[str, Any], public_key: Ed25519PublicKey | None, now: float,
           first_sight: Callable[[str, float, float], bool]) -> None:
    """Signature, then expiry, then replay; only a verified id is remembered."""
    if public_key is None:
        raise CommandRejected("no_key", "no controller_public_key is pinned in this kiosk's config")
    signing.verify(public_key, body)
    if now >= body["expires_at"]:
        raise CommandRejected("expired", f"command expired {now - body['expires_at']:.0f} s ago")
    if body["expires_at"] - body["issued_at"] > MAX_TTL or body["issued_at"] > now + CLOCK_SKEW:
        raise CommandRejected("expired", "command validity window is not plausible (check the clocks)")
    if not first_sight(body["id"], body["expires_at"], now):
        raise CommandRejected("replayed", f"command {body['id']} was already received")


def check_args(name: str, args: dict[str, Any]) -> None:
    spec = SPECS.get(name)
    if spec is None:
        raise CommandRejected("unknown_command", f"unknown command {name!r} (known: {', '.join(sorted(SPECS))})")
    for key, ok in spec.required.items():
        if key not in args or not ok(args[key]):
            raise CommandRejected("bad_arguments", f"{name}: bad or missing {key!r} ({spec.hint})")
    for key, value in args.items():
        if key in spec.required:
            continue
        check = spec.optional.get(key)
        if check is None:
            raise CommandRejected("bad_arguments", f"{name}: unknown argument {key!r} ({spec.hint})")
        if not check(value):
            raise CommandRejected("bad_arguments", f"{name}: bad value for {key!r} ({spec.hint})")


def result(body_id: str, kiosk_id: str, status: str, *, data: Any = None, error: str = "",
           reason: str = "") -> dict[str, Any]:
    """The body of ``cmd/{name}/result``: exactly one per command."""
    if status not in vocab.RESULT_STATUSES:
        raise ValueError(f"status must be one of {', '.join(vocab.RESULT_STATUSES)}")
    out: dict[str, Any] = {"id": body_id, "kiosk_id": kiosk_id, "status": status}
    if data is not None:
        out["data"] = data
    if error:
        out["error"] = error[:500]
    if reason:
        out["reason"] = reason
    return out


def wire_body(cmd: dict[str, Any]) -> dict[str, Any]:
    """The unsigned body published on ``cmd/{name}`` from a command record (``v`` included, as it
    is signed too; written as the version every kiosk of the major reads)."""
    return {"v": versions.TO_KIOSK, "id": cmd["id"], "kiosk_id": cmd["kiosk_id"], "name": cmd["name"],
            "issued_at": cmd["issued_at"], "expires_at": cmd["expires_at"], "issuer": cmd["issuer"],
            "args": cmd["args"]}


@dataclass(frozen=True)
class CommandResult:
    id: str
    status: str  # vocab.RESULT_STATUSES
    data: Any = None
    error: str = ""
    reason: str = ""  # vocab.REJECT_REASONS for rejected / expired


def parse_result(body: dict[str, Any]) -> CommandResult:
    if not isinstance(body.get("id"), str) or body.get("status") not in vocab.RESULT_STATUSES:
        raise RemoteProtocolError("command result needs a string id and a status of "
                                  + ", ".join(vocab.RESULT_STATUSES))
    return CommandResult(body["id"][:64], body["status"], body.get("data"), str(body.get("error") or "")[:500],
                         str(body.get("reason") or "")[:64])
