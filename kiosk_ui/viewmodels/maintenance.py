"""Maintenance mode: entry by a hidden gesture (five taps in the top-left corner within 3 s) then a
PIN, and what the maintenance screen says about the devices (translated, never a dict's text).

The PIN is checked against ``maintenance_pin_hash`` from the kiosk config:
``pbkdf2_sha256$ITERATIONS$SALT_HEX$HASH_HEX`` (make one with :func:`hash_pin`). Five wrong PINs
lock entry for a minute, each further lock-out twice as long as the one before (up to a day),
until the right PIN is entered. A four-digit PIN has 10,000 values: with a fixed minute per five
guesses it falls in a day and a half of an unattended night; doubling makes that centuries. The
state lives in the kiosk's data dir (``state_file``), so pulling the plug does not reset it.
Time is passed in (wall-clock seconds, so a lock-out survives a restart).
"""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
import secrets
from pathlib import Path
from typing import Any

from foundation.secure_files import write_atomic
from kiosk_ui.i18n import catalogue, tr

log = logging.getLogger(__name__)

TAPS = 5
TAP_WINDOW = 3.0
MAX_FAILURES = 5
LOCKOUT = 60.0
MAX_LOCKOUT = 24 * 3600.0


def hash_pin(pin: str, *, iterations: int = 100_000, salt: bytes | None = None) -> str:
    salt = salt or secrets.token_bytes(16)
    digest = hashlib.pbkdf2_hmac("sha256", pin.encode(), salt, iterations)
    return f"pbkdf2_sha256${iterations}${salt.hex()}${digest.hex()}"


def check_pin(pin: str, stored: str) -> bool:
    try:
        scheme, iterations, salt, digest = stored.split("$")
        if scheme != "pbkdf2_sha256":
            return False
        got = hashlib.pbkdf2_hmac("sha256", pin.encode(), bytes.fromhex(salt), int(iterations))
    except ValueError:
        return False
    return hmac.compare_digest(got.hex(), digest)


def lockout_seconds(lockouts: int) -> float:
    """How long the ``lockouts``-th lock-out in a row lasts: 60 s, 120 s, 240 s, ... at most a day."""
    return min(LOCKOUT * 2 ** max(lockouts - 1, 0), MAX_LOCKOUT)


class MaintenanceGate:
    def __init__(self, pin_hash: str, state_file: Path | None = None) -> None:
        self.pin_hash = pin_hash
        self.state_file = Path(state_file) if state_file else None
        self.taps: list[float] = []
        self.failures = 0
        self.lockouts = 0
        self.locked_until = 0.0
        self._load()

    def _load(self) -> None:
        if self.state_file is None or not self.state_file.exists():
            return
        try:
            state = json.loads(self.state_file.read_text())
            self.failures = int(state["failures"])
            self.lockouts = int(state["lockouts"])
            self.locked_until = float(state["locked_until"])
        except (OSError, ValueError, KeyError, TypeError):
            # A damaged (or deleted-and-faked) file must not reset the count: the next lock-out
            # is the longest one.
            log.warning("maintenance lock-out state unreadable", extra={"fields": {"path": str(self.state_file)}})
            self.lockouts = 12

    def _save(self) -> None:
        if self.state_file is not None:
            write_atomic(self.state_file, json.dumps({"failures": self.failures, "lockouts": self.lockouts,
                                                      "locked_until": self.locked_until}))

    @property
    def enabled(self) -> bool:
        return bool(self.pin_hash)

    def corner_tap(self, now: float) -> bool:
        """True when this tap completes the gesture (show the PIN pad)."""
        if not self.enabled:
            return False
        self.taps = [t for t in self.taps if now - t <= TAP_WINDOW] + [now]
        if len(self.taps) >= TAPS:
            self.taps = []
            return True
        return False

    def locked_for(self, now: float) -> float:
        return max(0.0, self.locked_until - now)

    def try_pin(self, pin: str, now: float) -> bool:
        if self.locked_for(now) > 0:
            return False
        if check_pin(pin, self.pin_hash):
            if self.failures or self.lockouts:
                self.failures = self.lockouts = 0
                self.locked_until = 0.0
                self._save()
            return True
        self.failures += 1
        if self.failures >= MAX_FAILURES:
            self.failures = 0
            self.lockouts += 1
            self.locked_until = now + lockout_seconds(self.lockouts)
        self._save()
        return False


# -- what the maintenance screen says about the devices ------------------------------------------
# Device status fields whose values come from a closed vocabulary: field -> the catalogue prefix
# of its values ("paper": "out" reads paper.out; an "error" is one of the contract's faults).
_VALUE_KINDS = {"paper": "paper", "cover": "cover", "cutter": "cutter", "connection": "connection",
                "media": "media", "error": "fault", "fault": "fault"}


def _term(kind: str, value: object, lang: str) -> str:
    if value is None or value == "":
        return ""
    key = f"{kind}.{value}"
    text = catalogue(lang).get(key)
    return text if text is not None else str(value)


def detail_text(detail: object, lang: str) -> str:
    """A device's detail as "纸张：缺纸 · 机盖：关闭" in ``lang``, never a dict's text."""
    if not isinstance(detail, dict):
        return _term("fault", detail, lang)
    parts = []
    for key in sorted(detail):
        value = detail[key]
        if value is None or value == "" or isinstance(value, dict | list):
            continue
        shown = tr("maint.yes" if value else "maint.no", lang) if isinstance(value, bool) \
            else _term(_VALUE_KINDS[key], value, lang) if key in _VALUE_KINDS else str(value)
        parts.append(tr("maint.field", lang, name=_term("field", key, lang), value=shown))
    return " · ".join(parts)


def action_text(action: object, lang: str) -> str:
    """A required action (an id of the contract's vocabulary) in ``lang``. A kiosk's driver that
    still words its hint in English gets the generic "check the device" here rather than English
    on a Chinese screen; the detail next to it says what is wrong."""
    if not action or action in ("None", "null"):
        return ""
    text = catalogue(lang).get(f"action.{action}")
    return text if text is not None else tr("action.check_device", lang)


def device_lines(status: dict[str, dict[str, Any]], lang: str) -> list[str]:
    """One line per device for the maintenance screen: name, state, detail, what to do."""
    lines = []
    for name, st in sorted(status.items()):
        line = tr("maint.device_line", lang, device=_term("device", name, lang),
                  state=_term("devstate", st.get("state", "unknown"), lang))
        detail = detail_text(st.get("detail", ""), lang)
        if detail:
            line += " — " + detail
        action = action_text(st.get("required_action"), lang)
        if action:
            line += " — " + tr("maint.action", lang, action=action)
        lines.append(line)
    return lines


def health_note(status: dict[str, dict[str, Any]], lang: str) -> str:
    """The health check's one-line summary: each device and its state."""
    return tr("maint.health_note", lang, devices=tr("maint.sep", lang).join(
        tr("maint.field", lang, name=_term("device", n, lang), value=_term("devstate", st.get("state"), lang))
        for n, st in sorted(status.items())) or "–")


def test_print_note(ok: bool, reason: object, lang: str) -> str:
    if ok:
        return tr("maint.test_print_ok", lang)
    return tr("maint.test_print_failed", lang, why=_term("fault", reason, lang) or "–")
