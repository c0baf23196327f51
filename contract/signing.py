"""Ed25519 signatures on fleet commands: the controller signs, each kiosk verifies.

The signed bytes are the canonical body: the command as JSON with sorted keys, no spaces,
UTF-8, without the ``signature`` field. Keys travel as base64 of the raw 32-byte key, so a
kiosk config pins the controller with one short line (``controller_public_key = "..."``).
"""

from __future__ import annotations

import base64
import binascii
import json
import logging
import os
from pathlib import Path
from typing import Any

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from foundation.errors import CommandRejected, ConfigError

log = logging.getLogger(__name__)

KEY_FILE = "controller_ed25519.pem"


def canonical(body: dict[str, Any]) -> bytes:
    """The bytes that are signed: sorted keys, no spaces, UTF-8, no ``signature`` field."""
    return json.dumps({k: v for k, v in body.items() if k != "signature"}, sort_keys=True,
                      separators=(",", ":"), ensure_ascii=False).encode("utf-8")


def public_key_text(key: Ed25519PrivateKey | Ed25519PublicKey) -> str:
    pub = key.public_key() if isinstance(key, Ed25519PrivateKey) else key
    raw = pub.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    return base64.b64encode(raw).decode("ascii")


def parse_public_key(text: str, *, field: str = "controller_public_key") -> Ed25519PublicKey:
    try:
        raw = base64.b64decode(text.strip(), validate=True)
    except (binascii.Error, ValueError):
        raise ConfigError("not base64", field=field) from None
    if len(raw) != 32:
        raise ConfigError(f"an Ed25519 public key is 32 bytes, got {len(raw)}", field=field)
    return Ed25519PublicKey.from_public_bytes(raw)


def load_or_create_key(data_dir: Path, key_file: str | Path | None = None) -> Ed25519PrivateKey:
    """Load the controller's signing key, generating one (mode 0600) in ``data_dir`` on first start."""
    path = Path(key_file) if key_file else Path(data_dir) / KEY_FILE
    if path.exists():
        try:
            key = serialization.load_pem_private_key(path.read_bytes(), password=None)
        except (ValueError, TypeError) as exc:
            raise ConfigError(f"not a PEM private key: {exc}", field="signing_key", path=str(path)) from None
        if not isinstance(key, Ed25519PrivateKey):
            raise ConfigError("the signing key must be Ed25519", field="signing_key", path=str(path))
        return key
    if key_file:
        raise ConfigError("file not found", field="signing_key", path=str(path))
    path.parent.mkdir(parents=True, exist_ok=True)
    key = Ed25519PrivateKey.generate()
    pem = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                            serialization.NoEncryption())
    # Create with 0600 from the start: the key must never be readable by others, even briefly.
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "wb") as fh:
        fh.write(pem)
    log.info("generated controller signing key", extra={"fields": {"path": str(path)}})
    return key


def sign(key: Ed25519PrivateKey, body: dict[str, Any]) -> dict[str, Any]:
    """Return ``body`` with its ``signature`` (base64)."""
    sig = key.sign(canonical(body))
    return {**body, "signature": base64.b64encode(sig).decode("ascii")}


def verify_desired(public_key: Ed25519PublicKey | None, body: dict[str, Any], kiosk_id: str) -> None:
    """A desired config is applied only if the controller signed it, for this kiosk: the broker's
    ACL already keeps others from writing it, the signature keeps a captured broker account (or a
    kiosk's own certificate) from feeding a kiosk its settings. Raises CommandRejected."""
    if public_key is None:
        raise CommandRejected("no_key", "no controller_public_key is pinned in this kiosk's config")
    verify(public_key, body)
    if body.get("kiosk_id") != kiosk_id:
        raise CommandRejected("wrong_kiosk", f"desired config is for kiosk {str(body.get('kiosk_id'))[:64]!r}")


def verify(public_key: Ed25519PublicKey, body: dict[str, Any]) -> None:
    """Raise CommandRejected("bad_signature", ...) unless ``body`` carries a valid signature."""
    sig_text = body.get("signature")
    if not isinstance(sig_text, str):
        raise CommandRejected("bad_signature", "command is not signed")
    try:
        sig = base64.b64decode(sig_text, validate=True)
        public_key.verify(sig, canonical(body))
    except (binascii.Error, ValueError, InvalidSignature):
        raise CommandRejected("bad_signature", "signature does not match the controller's key") from None
