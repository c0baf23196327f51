"""Building, signing and verifying release bundles (the work behind ``kiosk-release``).

A bundle is a folder: ``manifest.json`` plus ``objects/<sha256>`` (contract/release.py). The kiosk
bundle carries wheels (the project and every dependency, from ``pip wheel``) so a kiosk installs
with ``pip --no-index``; the supervisor bundle carries what ``python -m firmware.build`` makes.
``build`` writes an unsigned manifest; ``sign`` adds the release key's id and signature; ``verify``
runs exactly the checks a device runs (the same module), plus every object against the manifest.
Release keys and the key list are made here too: the root key signs the list, release keys sign
manifests, and neither is the controller's command-signing key.
"""

from __future__ import annotations

import hashlib
import json
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from contract import release as R
from foundation.errors import ProvisioningError
from foundation.secure_files import write_atomic, write_private

UNSIGNED = "unsigned"
DAY = 86400


def _sha256(path: Path) -> str:
    h = hashlib.sha256()
    with path.open("rb") as fh:
        while block := fh.read(1 << 16):
            h.update(block)
    return h.hexdigest()


def _collect(out: Path, files: dict[str, Path]) -> dict[str, dict[str, Any]]:
    """Copy each file into ``out/objects/<sha256>``; the manifest's file table."""
    table: dict[str, dict[str, Any]] = {}
    (out / R.OBJECTS_DIR).mkdir(parents=True, exist_ok=True)
    for rel, src in sorted(files.items()):
        digest = _sha256(src)
        dst = R.object_path(out, digest)
        if not dst.exists():
            shutil.copyfile(src, dst)
        table[R.check_path(rel)] = {"sha256": digest, "size": src.stat().st_size}
    return table


def _write_manifest(out: Path, doc: dict[str, Any]) -> R.Manifest:
    man = R.parse_manifest(doc)
    write_atomic(out / R.MANIFEST_FILE, man.raw())
    return man


def build_kiosk(out: Path, *, version: str, checkout: Path | None = None, wheels: Path | None = None,
                pip_args: tuple[str, ...] = (), min_from_version: str = "0.0.0", now: int, valid_days: int = 90,
                run: Callable = subprocess.run) -> R.Manifest:
    """A kiosk bundle of wheels: ``pip wheel`` of ``checkout`` (with its dependencies), or the
    ``*.whl`` files already in ``wheels``."""
    R.parse_version(version)
    if (checkout is None) == (wheels is None):
        raise ProvisioningError("give either a checkout to build wheels from or a folder of wheels")
    with tempfile.TemporaryDirectory(prefix="kiosk-wheels-") as tmp:
        if checkout is not None:
            # A kiosk runs the touch app: its bundle carries the [kiosk] extra (Kivy, Pillow, qrcode) too.
            argv = [sys.executable, "-m", "pip", "wheel", "--wheel-dir", tmp, *pip_args, f"{checkout}[kiosk]"]
            proc = run(argv, capture_output=True, text=True, timeout=1800)
            if proc.returncode != 0:
                raise ProvisioningError(f"pip wheel failed: {(proc.stderr or proc.stdout).strip()[-600:]}")
            wheels = Path(tmp)
        assert wheels is not None
        found = sorted(Path(wheels).glob("*.whl"))
        if not found:
            raise ProvisioningError(f"no wheels (*.whl) in {wheels}")
        table = _collect(out, {f"wheels/{w.name}": w for w in found})
    return _write_manifest(out, R.make_manifest("kiosk", version, table, min_from_version=min_from_version,
                                                created=now, expires=now + valid_days * DAY, key_id=UNSIGNED))


def build_supervisor(out: Path, *, firmware_dir: Path | None = None, min_from_version: str = "0.0.0", now: int,
                     valid_days: int = 90, run: Callable = subprocess.run) -> R.Manifest:
    """A supervisor bundle from ``python -m firmware.build`` (or the folder it already wrote)."""
    with tempfile.TemporaryDirectory(prefix="kiosk-fw-") as tmp:
        if firmware_dir is None:
            from device_drivers.supervisor_flash import build_bundle

            build_bundle(Path(tmp), run=run)
            firmware_dir = Path(tmp)
        from device_drivers.supervisor_flash import load_manifest

        fw = load_manifest(firmware_dir)
        table = _collect(out, {name: firmware_dir / name for name in fw["files"]})
        for name, meta in fw["files"].items():
            if table[name]["sha256"] != meta["sha256"]:
                raise ProvisioningError(f"{firmware_dir}/{name} changed since firmware.build listed it; rebuild")
    return _write_manifest(out, R.make_manifest("supervisor", fw["version"], table,
                                                min_from_version=min_from_version, created=now,
                                                expires=now + valid_days * DAY, key_id=UNSIGNED))


def read_manifest(bundle: Path) -> R.Manifest:
    path = Path(bundle) / R.MANIFEST_FILE
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        raise R.ReleaseRejected("bad_manifest", f"{bundle} is not a bundle: {R.MANIFEST_FILE} is missing") from None
    return R.parse_manifest(data)


def sign_bundle(bundle: Path, key: Ed25519PrivateKey, key_id: str) -> R.Manifest:
    """Sign the bundle's manifest in place with a release key."""
    man = read_manifest(bundle)
    body = {k: v for k, v in man.document.items() if k != "signature"}
    body["key_id"] = key_id
    return _write_manifest(Path(bundle), R.sign(key, body))


def verify_bundle(bundle: Path, keys: R.KeyList, *, now: float, component: str | None = None,
                  installed: str | None = None) -> R.Manifest:
    """The device's checks on the manifest, then every object; raises ReleaseRejected."""
    raw = (Path(bundle) / R.MANIFEST_FILE).read_bytes() if (Path(bundle) / R.MANIFEST_FILE).exists() else b""
    if not raw:
        raise R.ReleaseRejected("bad_manifest", f"{bundle} is not a bundle: {R.MANIFEST_FILE} is missing")
    comp = component or R.parse_manifest(raw).component
    man = R.verify_manifest(raw, keys, component=comp, installed=installed, now=now)
    for entry in man.files:
        R.check_file(entry, R.object_path(bundle, entry.sha256))
    return man


# -- keys -------------------------------------------------------------------------------------

def new_key(path: Path) -> Ed25519PrivateKey:
    """A new Ed25519 key written as PEM, mode 0600, refusing to overwrite an existing key."""
    key = Ed25519PrivateKey.generate()
    pem = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                            serialization.NoEncryption())
    write_private(path, pem, overwrite=False)
    return key


def load_key(path: Path) -> Ed25519PrivateKey:
    try:
        key = serialization.load_pem_private_key(Path(path).read_bytes(), password=None)
    except FileNotFoundError:
        raise ProvisioningError(f"key file {path} not found") from None
    except (ValueError, TypeError) as exc:
        raise ProvisioningError(f"{path} is not an unencrypted PEM private key: {exc}") from None
    if not isinstance(key, Ed25519PrivateKey):
        raise ProvisioningError(f"{path} is not an Ed25519 key")
    return key


def build_key_list(root: Ed25519PrivateKey, keys: list[tuple[str, str, list[str]]], *, serial: int, now: int,
                   valid_days: int = 365) -> dict[str, Any]:
    """A key list signed by the root: ``keys`` holds (id, public key base64, components)."""
    entries = [{"id": kid, "public_key": pub, "components": comps} for kid, pub, comps in keys]
    doc = R.sign(root, R.make_key_list(entries, serial=serial, created=now, expires=now + valid_days * DAY))
    R.verify_key_list(doc, root.public_key(), now=now)  # refuse to write a list no kiosk would take
    return doc


def write_json(path: Path, doc: dict[str, Any]) -> None:
    write_atomic(path, json.dumps(doc, indent=1, sort_keys=True) + "\n")
