"""Contract versions for a mixed fleet: ``"v"`` is ``"MAJOR.MINOR"`` (or the integer ``1`` = 1.0).

Rules (docs/mqtt.md, "Versions"): a reader accepts every minor version of its major, older or
newer, and ignores fields it does not know; a payload of another major is refused with
:class:`UnsupportedVersion`, which names the version so the receiver can count it. Within a
major, a newer minor only adds optional fields or words.
"""

from __future__ import annotations

import re
from typing import Any

from foundation.errors import RemoteProtocolError

MAJOR = 1
MINOR = 3  # 1.3: the desired config's time_zone (contract.desired_config.KEYS_SINCE)
CURRENT = f"{MAJOR}.{MINOR}"
# What the controller writes towards kiosks: 1.0 kiosks compare ``v`` with the integer 1, and
# nothing the controller sends needs 1.1, so the integer keeps them working during a roll-out.
TO_KIOSK = 1
_TEXT = re.compile(r"^(\d{1,4})\.(\d{1,4})$")


class UnsupportedVersion(RemoteProtocolError):
    """A payload of a contract major this side does not speak; ``version`` is what it said."""

    def __init__(self, version: Any) -> None:
        self.version = str(version)[:16]
        super().__init__(f"unsupported contract version {self.version!r} (this side speaks {MAJOR}.x)")


def parse_version(v: Any) -> tuple[int, int]:
    """``1`` -> (1, 0), ``"1.3"`` -> (1, 3); anything else raises RemoteProtocolError."""
    if isinstance(v, int) and not isinstance(v, bool) and v >= 0:
        return v, 0
    if isinstance(v, str):
        m = _TEXT.match(v)
        if m:
            return int(m.group(1)), int(m.group(2))
    raise RemoteProtocolError(f"payload version must be \"MAJOR.MINOR\" or an integer, got {str(v)[:16]!r}")


def check(body: dict[str, Any]) -> tuple[int, int]:
    """The payload's version if this side can read it, else UnsupportedVersion / RemoteProtocolError."""
    if "v" not in body:
        raise RemoteProtocolError("payload has no contract version \"v\"")
    major, minor = parse_version(body["v"])
    if major != MAJOR:
        raise UnsupportedVersion(body["v"])
    return major, minor
