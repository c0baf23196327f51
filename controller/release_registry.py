"""The controller's registry of published releases, and the files kiosks download.

``publish`` takes a signed bundle folder (``kiosk-release build`` + ``sign``), checks it as a
kiosk would (manifest shape and signature, with the fleet's release key list when the controller
has one; every file's size and SHA-256), then copies it to ``DATA/releases/<component>/<version>/``
(``manifest.json`` + ``objects/<sha256>``) through a staging folder renamed into place, so a
half-copied release is never served. A published version never changes. When the fleet database is
PostgreSQL the objects and the manifest are written into it too (``controller.release_share``), so
every controller instance serves the release (``controller.release_local``).
"""

from __future__ import annotations

import hashlib
import os
import shutil
from pathlib import Path
from typing import Any

from contract import release as R
from controller import release_share
from controller.rollout_store import RolloutStore
from foundation.errors import ConfigError


def release_dir(data_dir: Path, component: str, version: str) -> Path:
    return Path(data_dir) / "releases" / component / version


def publish(store: RolloutStore, data_dir: Path, bundle: Path, *, user: str, now: float,
            keys: R.KeyList | None = None) -> dict[str, Any]:
    try:
        raw = (Path(bundle) / R.MANIFEST_FILE).read_bytes()
    except OSError:
        raise R.ReleaseRejected("bad_manifest", f"{bundle} is not a bundle (no {R.MANIFEST_FILE})") from None
    man = R.parse_manifest(raw)
    if keys is not None:
        R.verify_manifest(raw, keys, component=man.component, installed=None, now=now)
    elif not man.document.get("signature"):
        raise R.ReleaseRejected("not_signed", f"release {man.version} carries no signature: sign it first")
    if man.expires <= now:
        raise R.ReleaseRejected("expired", f"release {man.version} expired at {man.expires}")
    for entry in man.files:
        R.check_file(entry, R.object_path(bundle, entry.sha256))
    if store.release(man.version, man.component) is not None:
        raise ConfigError(f"{man.component} release {man.version} is already published", field="version")
    final = release_dir(data_dir, man.component, man.version)
    stage = final.with_name(f".{man.version}.staging")
    shutil.rmtree(stage, ignore_errors=True)
    (stage / R.OBJECTS_DIR).mkdir(parents=True)
    for entry in man.files:
        shutil.copyfile(R.object_path(bundle, entry.sha256), R.object_path(stage, entry.sha256))
    (stage / R.MANIFEST_FILE).write_bytes(raw)
    if store.on_postgresql:  # every instance serves it: the objects first, the manifest with the registry row
        release_share.store_bundle(store.conn(), stage, man, now)
    os.replace(stage, final)
    rec = {"component": man.component, "version": man.version, "manifest_sha256": hashlib.sha256(raw).hexdigest(),
           "size": man.total_size, "files": len(man.files), "published_by": user, "published_at": now,
           "expires_at": float(man.expires)}
    try:
        store.add_release(rec, manifest=raw)
    except BaseException:
        # Another publisher of this version won the race: its files, not these, are the release.
        shutil.rmtree(final, ignore_errors=True)
        raise
    return rec
