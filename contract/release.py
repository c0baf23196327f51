"""Release manifests and the signed list of release keys: the one parser both sides import.

A release bundle is a folder (or what a kiosk downloads of one)::

    manifest.json            the signed manifest
    objects/<sha256>         every file, content-addressed, so a kiosk fetches only what it lacks

The manifest names the component (``kiosk`` software or ``supervisor`` firmware), the version,
the oldest version it can update from, each file's SHA-256 and size, and its created/expiry times
(Unix seconds). It is signed with an Ed25519 *release* key (never the command-signing key) over
its canonical JSON (sorted keys, no spaces, UTF-8, without ``signature``). A kiosk trusts release
keys only through the *key list*: a document signed by the fleet's release root key (pinned on the
kiosk at provisioning) that names each release key and the components it may sign. A new list
with a higher ``serial`` rotates keys or removes a compromised one; an older list is a replay.

Every check is here, and nothing in this module writes: callers save trusted state only after
:func:`verify_manifest` / :func:`verify_key_list` returned (the tough CVE-2025-2888 lesson:
metadata cached before its roll-back check poisons the cache). Time is a parameter.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from foundation.errors import KioskError

FORMAT = 1
COMPONENTS = ("kiosk", "supervisor")
MANIFEST_FILE = "manifest.json"
OBJECTS_DIR = "objects"
MAX_MANIFEST_BYTES = 1 << 20
MAX_FILES = 4096
MAX_FILE_BYTES = 512 << 20  # one wheel or firmware file; the largest real one (Kivy) is ~60 MB
CLOCK_SKEW_S = 300  # a manifest "created" this far in the future is still accepted
_VERSION_RE = re.compile(r"^(0|[1-9]\d{0,5})\.(0|[1-9]\d{0,5})\.(0|[1-9]\d{0,5})$")
_SHA_RE = re.compile(r"^[0-9a-f]{64}$")
_KEY_ID_RE = re.compile(r"^[A-Za-z0-9_.-]{1,64}$")
_PATH_PART_RE = re.compile(r"^[A-Za-z0-9_.+-]+$")
_MANIFEST_FIELDS = {"v", "component", "version", "min_from_version", "created", "expires", "files", "key_id"}
_KEY_LIST_FIELDS = {"v", "kind", "serial", "created", "expires", "keys"}
_KEY_FIELDS = {"id", "public_key", "components"}
_FILE_FIELDS = {"sha256", "size"}
_READ_BLOCK = 64 * 1024


class ReleaseRejected(KioskError):
    """A bundle, manifest, file or key list failed a check; ``reason`` is a stable code.

    Codes: bad_manifest, bad_key_list, not_signed, unknown_key, bad_signature, expired,
    not_yet_valid, wrong_component, not_newer, too_old, key_list_replay, missing_file,
    size_mismatch, hash_mismatch.
    """

    def __init__(self, reason: str, message: str) -> None:
        self.reason = reason
        super().__init__(f"{reason}: {message}")


def parse_version(text: Any, *, field: str = "version") -> tuple[int, int, int]:
    """``"1.4.2"`` -> (1, 4, 2); anything else is a bad_manifest naming ``field``."""
    m = _VERSION_RE.match(text) if isinstance(text, str) else None
    if m is None:
        raise ReleaseRejected("bad_manifest", f"{field} must look like 1.2.3, got {text!r}")
    return int(m.group(1)), int(m.group(2)), int(m.group(3))


def canonical(body: dict[str, Any]) -> bytes:
    """The signed bytes: sorted keys, no spaces, UTF-8, without the ``signature`` field."""
    return json.dumps({k: v for k, v in body.items() if k != "signature"}, sort_keys=True,
                      separators=(",", ":"), ensure_ascii=False).encode("utf-8")


def key_text(key: Ed25519PrivateKey | Ed25519PublicKey) -> str:
    """A key's public half as base64 of its raw 32 bytes."""
    pub = key.public_key() if isinstance(key, Ed25519PrivateKey) else key
    return base64.b64encode(pub.public_bytes(serialization.Encoding.Raw,
                                             serialization.PublicFormat.Raw)).decode("ascii")


def parse_key(text: Any, *, what: str = "public_key") -> Ed25519PublicKey:
    try:
        raw = base64.b64decode(text.strip(), validate=True) if isinstance(text, str) else b""
    except (binascii.Error, ValueError):
        raw = b""
    if len(raw) != 32:
        raise ReleaseRejected("bad_key_list", f"{what} is not base64 of a 32-byte Ed25519 key")
    return Ed25519PublicKey.from_public_bytes(raw)


def sign(key: Ed25519PrivateKey, body: dict[str, Any]) -> dict[str, Any]:
    """``body`` with its ``signature`` (base64) over :func:`canonical`."""
    return {**body, "signature": base64.b64encode(key.sign(canonical(body))).decode("ascii")}


def _check_signature(public_key: Ed25519PublicKey, body: dict[str, Any], what: str) -> None:
    sig_text = body.get("signature")
    if not isinstance(sig_text, str) or not sig_text:
        raise ReleaseRejected("not_signed", f"the {what} carries no signature")
    try:
        public_key.verify(base64.b64decode(sig_text, validate=True), canonical(body))
    except (binascii.Error, ValueError, InvalidSignature):
        raise ReleaseRejected("bad_signature", f"the {what}'s signature does not match its key") from None


def _load_json(data: bytes, reason: str, what: str) -> dict[str, Any]:
    if len(data) > MAX_MANIFEST_BYTES:
        raise ReleaseRejected(reason, f"the {what} is larger than {MAX_MANIFEST_BYTES} bytes")
    try:
        doc = json.loads(data.decode("utf-8"))
    except (UnicodeDecodeError, ValueError) as exc:
        raise ReleaseRejected(reason, f"the {what} is not JSON: {exc}") from None
    if not isinstance(doc, dict):
        raise ReleaseRejected(reason, f"the {what} must be a JSON object")
    return doc


def _fields(doc: dict[str, Any], required: set[str], reason: str, what: str) -> None:
    """Refuse unknown fields and missing ones; ``signature`` is checked separately (not_signed)."""
    unknown = sorted(set(doc) - required - {"signature"})
    if unknown:
        raise ReleaseRejected(reason, f"unknown field(s) in the {what}: {', '.join(unknown)}")
    missing = sorted(required - set(doc))
    if missing:
        raise ReleaseRejected(reason, f"missing field(s) in the {what}: {', '.join(missing)}")


def _int(doc: dict[str, Any], name: str, reason: str) -> int:
    value = doc[name]
    if not isinstance(value, int) or isinstance(value, bool) or value < 0:
        raise ReleaseRejected(reason, f"{name} must be a non-negative integer (Unix seconds)")
    return value


# -- the key list -----------------------------------------------------------------------------

@dataclass(frozen=True)
class KeyList:
    """The verified list of release keys: id -> (key, components it may sign)."""

    serial: int
    expires: int
    keys: dict[str, tuple[Ed25519PublicKey, tuple[str, ...]]]
    document: dict[str, Any]  # the signed document as received, for saving and re-verifying

    def key_for(self, key_id: Any, component: str) -> Ed25519PublicKey:
        entry = self.keys.get(key_id) if isinstance(key_id, str) else None
        if entry is None:
            raise ReleaseRejected("unknown_key", f"release key {key_id!r} is not in the trusted key list "
                                                 f"(serial {self.serial})")
        if component not in entry[1]:
            raise ReleaseRejected("unknown_key", f"release key {key_id!r} may not sign {component} releases")
        return entry[0]


def make_key_list(keys: list[dict[str, Any]], *, serial: int, created: int, expires: int) -> dict[str, Any]:
    """An unsigned key-list document; ``keys`` holds ``{"id", "public_key", "components"}``."""
    return {"v": FORMAT, "kind": "release-keys", "serial": serial, "created": created,
            "expires": expires, "keys": keys}


def verify_key_list(data: bytes | dict[str, Any], root: Ed25519PublicKey, *, now: float,
                    trusted_serial: int = 0) -> KeyList:
    """Parse and check a key list against the pinned root key; refuse a replay of an older list.

    A list with the same serial as the trusted one is accepted only if it is the same list
    (re-verifying the saved one at start-up); a lower serial is always a replay.
    """
    doc = data if isinstance(data, dict) else _load_json(data, "bad_key_list", "key list")
    _fields(doc, _KEY_LIST_FIELDS, "bad_key_list", "key list")
    if doc["v"] != FORMAT or doc["kind"] != "release-keys":
        raise ReleaseRejected("bad_key_list", f"not a release key list of format {FORMAT}")
    _check_signature(root, doc, "key list")
    serial = _int(doc, "serial", "bad_key_list")
    expires = _int(doc, "expires", "bad_key_list")
    if serial < trusted_serial:
        raise ReleaseRejected("key_list_replay", f"key list serial {serial} is older than the trusted "
                                                 f"serial {trusted_serial}")
    if expires <= now:
        raise ReleaseRejected("expired", f"the key list (serial {serial}) expired at {expires}")
    if not isinstance(doc["keys"], list) or not doc["keys"]:
        raise ReleaseRejected("bad_key_list", "keys must be a non-empty list")
    keys: dict[str, tuple[Ed25519PublicKey, tuple[str, ...]]] = {}
    for entry in doc["keys"]:
        if not isinstance(entry, dict):
            raise ReleaseRejected("bad_key_list", "each key must be an object")
        _fields(entry, _KEY_FIELDS, "bad_key_list", "key entry")
        if "signature" in entry:
            raise ReleaseRejected("bad_key_list", "unknown field(s) in the key entry: signature")
        kid = entry["id"]
        if not isinstance(kid, str) or not _KEY_ID_RE.match(kid) or kid in keys:
            raise ReleaseRejected("bad_key_list", f"key id {kid!r} is malformed or repeated")
        comps = entry["components"]
        if not isinstance(comps, list) or not comps or any(c not in COMPONENTS for c in comps):
            raise ReleaseRejected("bad_key_list", f"key {kid}: components must be a list from {COMPONENTS}")
        keys[kid] = (parse_key(entry["public_key"], what=f"key {kid}"), tuple(comps))
    return KeyList(serial=serial, expires=expires, keys=keys, document=doc)


# -- the manifest -----------------------------------------------------------------------------

@dataclass(frozen=True)
class FileEntry:
    path: str
    sha256: str
    size: int


@dataclass(frozen=True)
class Manifest:
    component: str
    version: str
    min_from_version: str
    created: int
    expires: int
    key_id: str
    files: tuple[FileEntry, ...]
    document: dict[str, Any]

    @property
    def total_size(self) -> int:
        return sum(f.size for f in self.files)

    def raw(self) -> bytes:
        """The manifest as stored in a bundle (pretty JSON; the signature covers the canonical form)."""
        return (json.dumps(self.document, indent=1, sort_keys=True, ensure_ascii=False) + "\n").encode()


def check_path(path: Any) -> str:
    """A relative path of plain segments (no ``..``, no hidden or absolute names)."""
    if not isinstance(path, str) or not 0 < len(path) <= 200:
        raise ReleaseRejected("bad_manifest", f"file path {path!r} is empty or too long")
    for part in path.split("/"):
        if not _PATH_PART_RE.match(part) or part.startswith("."):
            raise ReleaseRejected("bad_manifest", f"file path {path!r} is not a plain relative path")
    return path


def make_manifest(component: str, version: str, files: dict[str, dict[str, Any]], *, min_from_version: str,
                  created: int, expires: int, key_id: str) -> dict[str, Any]:
    """An unsigned manifest document (``files``: path -> {"sha256", "size"})."""
    return {"v": FORMAT, "component": component, "version": version, "min_from_version": min_from_version,
            "created": created, "expires": expires, "key_id": key_id, "files": files}


def parse_manifest(data: bytes | dict[str, Any]) -> Manifest:
    """Shape checks only (no signature, no time): what the manifest says, or bad_manifest."""
    doc = data if isinstance(data, dict) else _load_json(data, "bad_manifest", "manifest")
    _fields(doc, _MANIFEST_FIELDS, "bad_manifest", "manifest")
    if doc["v"] != FORMAT:
        raise ReleaseRejected("bad_manifest", f"manifest format {doc['v']!r} is not {FORMAT}")
    if doc["component"] not in COMPONENTS:
        raise ReleaseRejected("bad_manifest", f"component must be one of {COMPONENTS}, got {doc['component']!r}")
    parse_version(doc["version"])
    parse_version(doc["min_from_version"], field="min_from_version")
    created = _int(doc, "created", "bad_manifest")
    expires = _int(doc, "expires", "bad_manifest")
    if expires <= created:
        raise ReleaseRejected("bad_manifest", "expires must be later than created")
    if not isinstance(doc["key_id"], str) or not _KEY_ID_RE.match(doc["key_id"]):
        raise ReleaseRejected("bad_manifest", "key_id is malformed")
    files = doc["files"]
    if not isinstance(files, dict) or not 0 < len(files) <= MAX_FILES:
        raise ReleaseRejected("bad_manifest", f"files must be an object with 1..{MAX_FILES} entries")
    entries = []
    for path in sorted(files):
        meta = files[path]
        if not isinstance(meta, dict):
            raise ReleaseRejected("bad_manifest", f"file {path!r}: entry must be an object")
        if set(meta) != _FILE_FIELDS:
            raise ReleaseRejected("bad_manifest", f"file {path!r}: entry must have exactly sha256 and size")
        sha, size = meta["sha256"], meta["size"]
        if not isinstance(sha, str) or not _SHA_RE.match(sha):
            raise ReleaseRejected("bad_manifest", f"file {path!r}: sha256 must be 64 lowercase hex digits")
        if not isinstance(size, int) or isinstance(size, bool) or not 0 <= size <= MAX_FILE_BYTES:
            raise ReleaseRejected("bad_manifest", f"file {path!r}: size must be an integer 0..{MAX_FILE_BYTES}")
        entries.append(FileEntry(check_path(path), sha, size))
    return Manifest(component=doc["component"], version=doc["version"], min_from_version=doc["min_from_version"],
                    created=created, expires=expires, key_id=doc["key_id"], files=tuple(entries), document=doc)


def verify_manifest(data: bytes | dict[str, Any], keys: KeyList, *, component: str, installed: str | None,
                    now: float, refused: frozenset[str] = frozenset()) -> Manifest:
    """Every check a device makes before writing anything of a release; returns the manifest.

    ``installed`` is the version running now (None on a device with nothing installed);
    ``refused`` holds versions this device marked bad, which it never takes again.
    """
    man = parse_manifest(data)
    if keys.expires <= now:
        raise ReleaseRejected("expired", f"the trusted key list (serial {keys.serial}) has expired")
    if not man.document.get("signature"):
        raise ReleaseRejected("not_signed", f"release {man.version} carries no signature")
    _check_signature(keys.key_for(man.key_id, man.component), man.document, "manifest")
    if man.component != component:
        raise ReleaseRejected("wrong_component", f"this is a {man.component} release, not {component}")
    if man.expires <= now:
        raise ReleaseRejected("expired", f"release {man.version} expired at {man.expires}")
    if man.created > now + CLOCK_SKEW_S:
        raise ReleaseRejected("not_yet_valid", f"release {man.version} is dated in the future ({man.created})")
    if man.version in refused:
        raise ReleaseRejected("not_newer", f"release {man.version} failed on this device before")
    if installed is not None:
        if parse_version(man.version) <= parse_version(installed, field="installed version"):
            raise ReleaseRejected("not_newer", f"release {man.version} is not newer than the installed {installed}")
        if parse_version(installed, field="installed version") < parse_version(man.min_from_version):
            raise ReleaseRejected("too_old", f"release {man.version} updates only from {man.min_from_version} "
                                             f"or later; {installed} is installed")
    return man


def check_data(entry: FileEntry, data: bytes) -> None:
    """A file's bytes against its manifest entry: size first (truncation), then SHA-256."""
    if len(data) != entry.size:
        raise ReleaseRejected("size_mismatch", f"{entry.path}: {len(data)} bytes, the manifest says {entry.size}")
    if hashlib.sha256(data).hexdigest() != entry.sha256:
        raise ReleaseRejected("hash_mismatch", f"{entry.path}: SHA-256 differs from the manifest")


def check_file(entry: FileEntry, path: str | Path) -> None:
    """A file on disk against its entry, hashed in blocks (wheels can be large)."""
    path = Path(path)
    try:
        size = path.stat().st_size
    except FileNotFoundError:
        raise ReleaseRejected("missing_file", f"{entry.path} is missing") from None
    if size != entry.size:
        raise ReleaseRejected("size_mismatch", f"{entry.path}: {size} bytes, the manifest says {entry.size}")
    h = hashlib.sha256()
    with path.open("rb") as fh:
        while block := fh.read(_READ_BLOCK):
            h.update(block)
    if h.hexdigest() != entry.sha256:
        raise ReleaseRejected("hash_mismatch", f"{entry.path}: SHA-256 differs from the manifest")


def object_path(bundle: str | Path, sha256: str) -> Path:
    """Where a bundle keeps the file with this hash."""
    return Path(bundle) / OBJECTS_DIR / sha256
