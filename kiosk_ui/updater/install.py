"""Installing a verified release into its own folder, beside the running one.

The venv is built at its final path, ``releases/<version>/venv`` (a venv cannot be moved), with
``pip --no-index`` from the bundle's wheels only: a kiosk never needs a package index. The running
release's folder is never touched (the old process must not import the new tree). The folder
counts as installed only when ``.installed`` exists, written last; recovery removes any folder
without it. Before anything is written the manifest passes every check of contract/release.py,
and a trusted key list is saved only after it verified.
"""

from __future__ import annotations

import errno
import hashlib
import json
import logging
import os
import shutil
import sys
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from contract import release as R
from kiosk_ui.updater.fsops import Fs
from kiosk_ui.updater.state import INSTALLED_MARK, Layout, UpdateError

log = logging.getLogger(__name__)
VENV_FACTOR = 3  # an installed venv takes about this many times its wheels' size


def check_pin(raw: bytes, manifest_sha256: str) -> None:
    """The manifest downloaded must be the one a signed ``cmd/update`` named."""
    got = hashlib.sha256(raw).hexdigest()
    if got != manifest_sha256.lower():
        raise UpdateError("manifest_mismatch", f"release.json hashes to {got[:12]}..., the update named "
                          f"{manifest_sha256[:12]}...")


class Installer:
    def __init__(self, layout: Layout, *, root_key: Ed25519PublicKey, fs: Fs | None = None,
                 clock: Callable[[], float], python: str = sys.executable, pip: tuple[str, ...] | None = None,
                 component: str = "kiosk") -> None:
        self.lay = layout
        self.root_key = root_key
        self.fs = fs or Fs()
        self.clock = clock
        self.python = python
        self.pip = pip or (sys.executable, "-m", "pip")
        self.component = component

    # -- trust ----------------------------------------------------------------------------------
    def trusted_keys(self) -> R.KeyList:
        doc = self.lay.load().key_list
        if doc is None:
            raise UpdateError("no_key_list", "no release key list is trusted yet; install one first")
        return R.verify_key_list(doc, self.root_key, now=self.clock())

    def accept_key_list(self, data: bytes) -> R.KeyList:
        """Verify a new key list against the root and the trusted serial, then save it."""
        st = self.lay.load()
        serial = st.key_list.get("serial", 0) if isinstance(st.key_list, dict) else 0
        keys = R.verify_key_list(data, self.root_key, now=self.clock(), trusted_serial=serial)
        self.fs.mkdir(self.lay.root)
        self.fs.write_atomic(self.lay.state_file, replace(st, key_list=keys.document).to_json())
        return keys

    def check(self, manifest_bytes: bytes, installed: str | None) -> R.Manifest:
        """Every check before a byte of the release is written."""
        st = self.lay.load()
        return R.verify_manifest(manifest_bytes, self.trusted_keys(), component=self.component,
                                 installed=installed, now=self.clock(), refused=frozenset(st.bad))

    # -- install ----------------------------------------------------------------------------------
    def install(self, man: R.Manifest, ensure: Callable[[R.FileEntry], Path]) -> Path:
        """Fetch what is missing (``ensure`` gives a verified object), then build the release folder."""
        d = self.lay.release(man.version)
        if self.lay.installed(man.version):
            return d
        self._check_space(man)
        try:
            objects = {e.path: ensure(e) for e in man.files}
            if d.exists():
                self.fs.remove(d)  # a half-built folder from an earlier attempt
            self.fs.mkdir(d / "wheels")
            wheels = []
            for entry in man.files:
                dst = d / entry.path
                self.fs.mkdir(dst.parent)
                self._link(objects[entry.path], dst)
                if dst.suffix == ".whl":
                    wheels.append(str(dst))
            if not wheels:
                raise UpdateError("no_wheels", f"release {man.version} carries no wheels")
            self._run([self.python, "-m", "venv", "--without-pip", str(d / "venv")], "venv")
            self._run([*self.pip, "--python", str(d / "venv" / "bin" / "python"), "install", "--no-index",
                       "--no-deps", "--disable-pip-version-check", "--no-cache-dir", *wheels], "pip install")
            self.fs.sync()  # pip does not fsync; the marker below must never outlive the files
            self.fs.write_atomic(d / "release.json", json.dumps(man.document, sort_keys=True).encode())
            self.fs.write_atomic(d / INSTALLED_MARK, f"{man.version}\n".encode())
            self.fs.fsync(self.lay.releases)
        except OSError as exc:
            if exc.errno != errno.ENOSPC:
                raise
            self.fs.remove(d)
            raise UpdateError("disk_full", f"the disk filled up installing {man.version}; space reclaimed") from None
        log.info("installed", extra={"fields": {"version": man.version, "path": str(d)}})
        return d

    def _link(self, src: Path, dst: Path) -> None:
        self.fs.step("link", dst)
        try:
            os.link(src, dst)
        except OSError:
            shutil.copyfile(src, dst)

    def _run(self, argv: list[str], what: str) -> None:
        proc = self.fs.run(argv, timeout=1800)
        if proc.returncode != 0:
            err = (proc.stderr or proc.stdout or "").strip()[-600:]
            if "No space left" in err:
                raise OSError(errno.ENOSPC, err)
            raise UpdateError("install_failed", f"{what} failed: {err}")

    def _check_space(self, man: R.Manifest) -> None:
        self.fs.mkdir(self.lay.releases)
        missing = sum(e.size for e in man.files if not (self.lay.objects / e.sha256).exists())
        need = missing + VENV_FACTOR * man.total_size
        free = shutil.disk_usage(self.lay.root).free
        if free < need:
            raise UpdateError("disk_full", f"release {man.version} needs about {need} bytes, {free} are free")
