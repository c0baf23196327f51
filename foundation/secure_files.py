"""Writing key material and configuration atomically, with the right mode from the first byte.

Private keys are created 0600 through ``os.open`` (never chmod-ed afterwards, so there is no
moment when another user could read them); public files are 0644. A write goes to a temporary
file in the same folder and is renamed over the target, so a crash never leaves half a key.
"""

from __future__ import annotations

import hashlib
import hmac
import os
import secrets
from pathlib import Path

from foundation.errors import ProvisioningError

PRIVATE = 0o600
PUBLIC = 0o644


def write_atomic(path: str | Path, data: bytes | str, *, mode: int = PUBLIC, overwrite: bool = True) -> Path:
    """Write ``data`` to ``path`` atomically with ``mode``; refuse to replace it if ``overwrite`` is false."""
    path = Path(path)
    if isinstance(data, str):
        data = data.encode("utf-8")
    if not overwrite and path.exists():
        raise ProvisioningError(f"{path} already exists; refusing to overwrite it (move it away first)")
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{secrets.token_hex(4)}.tmp")
    try:
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, mode)
    except PermissionError:
        raise ProvisioningError(f"cannot write {path}: permission denied (run as the owner of {path.parent})") from None
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    return path


def write_private(path: str | Path, data: bytes | str, *, overwrite: bool = True) -> Path:
    return write_atomic(path, data, mode=PRIVATE, overwrite=overwrite)


def read_passphrase_file(path: str | Path) -> bytes:
    """The first line of ``path``, without its newline; the content never goes into a message."""
    path = Path(path)
    try:
        text = path.read_bytes()
    except FileNotFoundError:
        raise ProvisioningError(f"passphrase file {path} not found") from None
    except PermissionError:
        raise ProvisioningError(f"passphrase file {path} is not readable (permission denied)") from None
    line = text.splitlines()[0] if text else b""
    if len(line) < 8:
        raise ProvisioningError(f"passphrase in {path} is shorter than 8 characters")
    return line


RESIDENT_KEY_BYTES = 32


def new_resident_key() -> str:
    """A fleet's resident-reference key, as the 64 hex digits written to its key file."""
    return secrets.token_hex(RESIDENT_KEY_BYTES)


def check_resident_key(text: str, where: str) -> bytes:
    """The key bytes from its hex text; a ProvisioningError naming ``where`` if it is malformed."""
    text = text.strip()
    if len(text) != 2 * RESIDENT_KEY_BYTES or any(c not in "0123456789abcdef" for c in text):
        raise ProvisioningError(f"{where} must hold {2 * RESIDENT_KEY_BYTES} lowercase hex digits")
    return bytes.fromhex(text)


def site_resident_key(fleet_key: bytes, site: str) -> bytes:
    """The resident-reference key of one site, derived from the fleet's: kiosks get only their
    site's key, so a captured kiosk can compute references (and query balances, bookings) for its
    own community only. References are per site by design: a volunteer's hours and a booking
    belong to the community centre where they were made."""
    return hmac.new(fleet_key, b"kiosk-resident-site-v1:" + site.encode("utf-8"), hashlib.sha256).digest()


def resident_key_file(path: str | Path, *, create: bool = False) -> bytes:
    """Read the resident-reference key file; with ``create``, make it (0600) first if it is missing."""
    path = Path(path)
    if create and not path.exists():
        try:
            write_private(path, new_resident_key() + "\n", overwrite=False)
        except ProvisioningError:
            if not path.exists():  # lost a race with another process creating it: read theirs
                raise
    try:
        text = path.read_text(encoding="ascii")
    except FileNotFoundError:
        raise ProvisioningError(f"resident reference key file {path} not found") from None
    except (PermissionError, UnicodeDecodeError) as exc:
        raise ProvisioningError(f"resident reference key file {path} is not readable: {exc}") from None
    return check_resident_key(text, f"resident reference key file {path}")
