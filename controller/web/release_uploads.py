"""Receiving a release from ``kiosk-release publish``: pieces of each file, then the manifest.

Each file of the bundle is uploaded by its SHA-256 in pieces no larger than the console's body
limit (``PUT /api/v1/releases/uploads/{sha256}?offset=N``), appended to
``DATA/releases/.uploads/<sha256>.part`` only at the offset the server already has (so a dropped
link resumes: ``GET`` says how much arrived). The offset check and the append happen under an
exclusive lock on the part file, so two uploads of the same file (two publishers, or a retry that
overtook its first attempt) cannot both append at one offset; no file grows past
:data:`contract.release.MAX_FILE_BYTES`, the largest size a manifest may name. ``POST /api/v1/releases`` with the manifest then
assembles a bundle from the uploaded files and publishes it through
:func:`controller.release_registry.publish`, which checks the signature and every file's size and
SHA-256 before anything is served.
"""

from __future__ import annotations

import fcntl
import json
import os
import shutil
from pathlib import Path
from typing import Any

from contract import release as R
from controller import release_registry
from foundation.errors import ConfigError


class WrongOffset(ConfigError):
    def __init__(self, size: int) -> None:
        self.size = size
        super().__init__(f"the server has {size} bytes of this file: send from there", field="offset")


class TooLarge(ConfigError):
    def __init__(self, size: int) -> None:
        self.size = size
        super().__init__(f"a release file is at most {R.MAX_FILE_BYTES} bytes; this piece would make it {size}",
                         field="size")


def _part(data_dir: Path, sha: str) -> Path:
    return Path(data_dir) / "releases" / ".uploads" / f"{sha}.part"


def size(data_dir: Path, sha: str) -> int:
    try:
        return _part(data_dir, sha).stat().st_size
    except FileNotFoundError:
        return 0


def append(data_dir: Path, sha: str, offset: int, data: bytes) -> int:
    part = _part(data_dir, sha)
    part.parent.mkdir(parents=True, exist_ok=True)
    with part.open("ab") as fh:
        fcntl.flock(fh, fcntl.LOCK_EX)  # released when the file closes
        have = os.fstat(fh.fileno()).st_size
        if offset != have:
            raise WrongOffset(have)
        if have + len(data) > R.MAX_FILE_BYTES:
            raise TooLarge(have + len(data))
        fh.write(data)
    return have + len(data)


def _drop_bad_parts(data_dir: Path, man: R.Manifest) -> None:
    for entry in man.files:
        part = _part(data_dir, entry.sha256)
        try:
            R.check_file(entry, part)
        except R.ReleaseRejected:
            part.unlink(missing_ok=True)


def publish(job: Any, doc: dict[str, Any], user: str) -> dict[str, Any]:
    raw = (json.dumps(doc, indent=1, sort_keys=True, ensure_ascii=False) + "\n").encode()
    man = R.parse_manifest(raw)
    bundle = Path(job.data_dir) / "releases" / ".uploads" / f"bundle-{man.component}-{man.version}"
    shutil.rmtree(bundle, ignore_errors=True)
    (bundle / R.OBJECTS_DIR).mkdir(parents=True)
    try:
        for entry in man.files:
            part = _part(job.data_dir, entry.sha256)
            if not part.is_file():
                raise R.ReleaseRejected("missing_file", f"{entry.path} ({entry.sha256[:12]}…) was not uploaded")
            target = R.object_path(bundle, entry.sha256)
            if not target.exists():
                os.link(part, target)
        (bundle / R.MANIFEST_FILE).write_bytes(raw)
        rec = release_registry.publish(job.store, job.data_dir, bundle, user=user, now=job.clock())
    except R.ReleaseRejected:
        _drop_bad_parts(job.data_dir, man)  # or a corrupted piece would be skipped by every retry
        raise
    finally:
        shutil.rmtree(bundle, ignore_errors=True)
    for entry in man.files:
        _part(job.data_dir, entry.sha256).unlink(missing_ok=True)
    job.audit(user, "release_publish", f"{rec['component']}:{rec['version']}", "ok",
              {"manifest_sha256": rec["manifest_sha256"], "size": rec["size"]})
    return rec
