"""The update joint of the fleet link: ``cmd/update`` arguments and the retained ``update/state``.

The controller asks a kiosk to update with the signed command ``cmd/update`` (the ordinary command
path of :mod:`contract.commands`; its arguments are checked by :func:`check_update_args`). The
kiosk answers the command at once (accepted or refused) and then reports how the update goes on
``kiosk/v1/{id}/update/state`` (QoS 1, retained: the last word survives restarts of either side):
``downloading``, ``installed``, ``switched``, ``committed``, ``rolled_back`` (reason),
``deferred`` (an activity holds the update lock; reason names it) and ``failed`` (reason).
:func:`state` builds the body, :func:`parse_state` reads it.

A reason is ``"<id>: <detail>"``: a stable id from :data:`REASONS` (what an operator's console
translates), then the kiosk's own words (file names, sizes: diagnostic data, shown as they are).
:func:`reason_id` splits it; an id this version does not know is kept as the code it is.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from foundation.errors import RemoteProtocolError

STATES = ("downloading", "installed", "switched", "committed", "rolled_back", "deferred", "failed")
FINAL = ("committed", "rolled_back", "failed")  # the update of that version is over on that kiosk
NEED_REASON = ("rolled_back", "deferred", "failed")

VERSION = re.compile(r"^[0-9]+\.[0-9]+\.[0-9]+$")
SHA256 = re.compile(r"^[0-9a-f]{64}$")
ROLLOUT_ID = re.compile(r"^[A-Za-z0-9_-]{1,64}$")
MAX_URL = 500

# The ids a kiosk puts first in an update reason: the release checks (contract.release), the
# updater's steps (kiosk_ui.updater), the health window's roll-backs and the agent's own.
REASONS = (
    "bad_manifest", "not_signed", "unknown_key", "bad_signature", "expired", "not_yet_valid", "wrong_component",
    "not_newer", "too_old", "missing_file", "size_mismatch", "hash_mismatch", "bad_key_list", "key_list_replay",
    "no_root_key", "no_key_list", "already_active", "not_installed", "trial_pending", "marked_bad",
    "nothing_to_switch", "manifest_mismatch", "no_wheels", "disk_full", "install_failed", "bad_state",
    "not_on_server", "crashed", "not_ready", "no_broker", "devices_failed", "boot_loop", "update_busy",
    "wrong_release", "no_trial", "aborted", "internal", "switch_failed", "busy", "locked")
# Heads of reasons that kiosks write as words rather than ids (kiosk_ui.updater.locks, the agent).
REASON_ALIASES = {"deferred (busy)": "busy", "deferred (locked)": "locked", "switch failed": "switch_failed"}
_REASON_ID = re.compile(r"^[a-z][a-z0-9_]{0,39}$")


def _is_url(v: Any) -> bool:
    return isinstance(v, str) and len(v) <= MAX_URL and v.startswith(("https://", "http://")) \
        and not any(c.isspace() for c in v)


# Argument checks of ``cmd/update`` in the shape contract.commands.SPECS uses.
UPDATE_REQUIRED = {
    "version": lambda v: isinstance(v, str) and bool(VERSION.match(v)),
    "url": _is_url,
    "manifest_sha256": lambda v: isinstance(v, str) and bool(SHA256.match(v)),
}
UPDATE_OPTIONAL = {
    "rollout": lambda v: isinstance(v, str) and bool(ROLLOUT_ID.match(v)),
    "component": lambda v: v == "kiosk",
}
UPDATE_HINT = ("version: MAJOR.MINOR.PATCH; url: the release's https:// folder; manifest_sha256: 64 hex digits; "
               "optional rollout: an id, component: kiosk")


def update_args(*, version: str, url: str, manifest_sha256: str, rollout: str = "") -> dict[str, Any]:
    """The ``args`` of ``cmd/update`` (checked here as the kiosk will check them)."""
    args: dict[str, Any] = {"version": version, "url": url, "manifest_sha256": manifest_sha256}
    if rollout:
        args["rollout"] = rollout
    for key, ok in {**UPDATE_REQUIRED, **UPDATE_OPTIONAL}.items():
        if key in args and not ok(args[key]):
            raise ValueError(f"update: bad {key!r} ({UPDATE_HINT})")
    return args


@dataclass(frozen=True)
class UpdateState:
    state: str  # STATES
    version: str  # the release this report is about
    reason: str = ""
    running: str = ""  # the release the kiosk runs now ("" if it cannot tell)
    rollout: str = ""
    command: str = ""  # id of the cmd/update this follows ("" after a restart lost it)
    ts: float | None = None

    @property
    def final(self) -> bool:
        return self.state in FINAL


def state(kiosk_id: str, *, state: str, version: str, ts: float, reason: str = "", running: str = "",
          rollout: str = "", command: str = "") -> dict[str, Any]:
    if state not in STATES:
        raise ValueError(f"update state must be one of {', '.join(STATES)}, got {state!r}")
    if state in NEED_REASON and not reason:
        raise ValueError(f"update state {state} needs a reason")
    return {"kiosk_id": kiosk_id, "state": state, "version": version, "reason": reason[:300],
            "running": running, "rollout": rollout, "command": command, "ts": ts}


def reason_id(reason: str) -> tuple[str, str]:
    """``(id, detail)`` of an update reason; ``("", reason)`` when it does not start with an id.
    The id may be one this version does not know (a newer kiosk's): callers show it as a code."""
    head, sep, detail = reason.partition(": ")
    head = REASON_ALIASES.get(head, head)
    if sep and _REASON_ID.match(head):
        return head, detail
    if not sep and _REASON_ID.match(reason):
        return reason, ""
    return "", reason


def _text(body: dict[str, Any], key: str, limit: int) -> str:
    value = body.get(key, "")
    if value is None:
        return ""
    if not isinstance(value, str):
        raise RemoteProtocolError(f"update/state {key} must be a string")
    return value[:limit]


def parse_state(body: dict[str, Any]) -> UpdateState:
    st = body.get("state")
    if st not in STATES:
        raise RemoteProtocolError(f"update/state state must be one of {', '.join(STATES)}, got {str(st)[:32]!r}")
    version = body.get("version")
    if not isinstance(version, str) or not VERSION.match(version):
        raise RemoteProtocolError(f"update/state version must be MAJOR.MINOR.PATCH, got {str(version)[:32]!r}")
    reason = _text(body, "reason", 300)
    if st in NEED_REASON and not reason:
        raise RemoteProtocolError(f"update/state {st} needs a reason")
    ts = body.get("ts")
    return UpdateState(state=st, version=version, reason=reason, running=_text(body, "running", 32),
                       rollout=_text(body, "rollout", 64), command=_text(body, "command", 64),
                       ts=float(ts) if isinstance(ts, int | float) and not isinstance(ts, bool) else None)
