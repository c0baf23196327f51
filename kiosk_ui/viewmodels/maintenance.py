"""Maintenance mode entry: a hidden gesture (five taps in the top-left corner within 3 s) then a PIN.

The PIN is checked against ``maintenance_pin_hash`` from the kiosk config:
``pbkdf2_sha256$ITERATIONS$SALT_HEX$HASH_HEX`` (make one with :func:`hash_pin`). Five wrong PINs
lock entry for a minute. Time is passed in.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets

TAPS = 5
TAP_WINDOW = 3.0
MAX_FAILURES = 5
LOCKOUT = 60.0


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


class MaintenanceGate:
    def __init__(self, pin_hash: str) -> None:
        self.pin_hash = pin_hash
        self.taps: list[float] = []
        self.failures = 0
        self.locked_until = 0.0

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
            self.failures = 0
            return True
        self.failures += 1
        if self.failures >= MAX_FAILURES:
            self.failures = 0
            self.locked_until = now + LOCKOUT
        return False
