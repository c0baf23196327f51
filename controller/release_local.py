"""The release files of this controller instance's data folder, completed from the fleet database.

With several instances on PostgreSQL a release is published on one of them
(``controller.release_registry``), which also writes its manifest and objects into the fleet
database (``controller.release_share``). :class:`LocalReleases` gives the serving code
(``controller.web.rollout_api``) the local path of a file of a published release: the file in
``DATA/releases/<component>/<version>/`` when this instance has it, else copied there from the
database first: into a temporary file, checked (the manifest against the SHA-256 the registry
recorded, an object against its manifest entry), fsynced, renamed into place. A damaged copy in
the database is never served: ``ShareError``. Requests for the same file at once wait for one
copy. On SQLite (one controller) the files are only in the data folder.

:func:`share_published` puts the releases this instance published before the database kept
release files (files only in its data folder) into the database; the controller runs it when its
roll-out job starts.
"""

from __future__ import annotations

import hashlib
import logging
import os
import threading
import uuid
from collections.abc import Callable
from concurrent.futures import Future
from pathlib import Path
from typing import IO, Any

from contract import release as R
from controller import release_share
from controller.release_registry import release_dir
from controller.release_share import ShareError
from foundation.errors import KioskError

log = logging.getLogger(__name__)


class NotHere(KioskError):
    """The file is not part of the release, or (SQLite) not in this data folder: 404."""


class LocalReleases:
    """``store``: the :class:`controller.rollout_store.RolloutStore` of the fleet database."""

    def __init__(self, store: Any, data_dir: Path) -> None:
        self.store = store
        self.data_dir = Path(data_dir)
        self._lock = threading.Lock()
        self._busy: dict[Path, Future[None]] = {}
        self.materialised = 0  # files copied from the database into the data folder (for /metrics)

    def file(self, rec: dict[str, Any], name: str) -> Path:
        """The local path of ``manifest.json`` or of the object ``name`` (its SHA-256) of the
        published release ``rec`` (its registry row), copied from the database if need be."""
        base = release_dir(self.data_dir, rec["component"], rec["version"])
        man_path = base / R.MANIFEST_FILE
        if not man_path.is_file():
            self._need_database(rec)
            self._once(man_path, lambda conn: self._write(man_path, lambda fh: self._fill_manifest(conn, rec, fh)))
        if name == R.MANIFEST_FILE:
            return man_path
        target = base / R.OBJECTS_DIR / name
        if target.is_file():
            return target
        entry = next((e for e in R.parse_manifest(man_path.read_bytes()).files if e.sha256 == name), None)
        if entry is None:
            raise NotHere("no such file in this release")
        self._need_database(rec)
        self._once(target, lambda conn: self._write(
            target, lambda fh: release_share.read_object(conn, entry, fh.write)))
        return target

    def _need_database(self, rec: dict[str, Any]) -> None:
        if not self.store.on_postgresql:
            raise NotHere(f"the files of {rec['component']} {rec['version']} are not in this controller's data folder")

    @staticmethod
    def _fill_manifest(conn: Any, rec: dict[str, Any], fh: IO[bytes]) -> None:
        raw = release_share.manifest(conn, rec["component"], rec["version"])
        if raw is None:
            raise ShareError(f"{rec['component']} {rec['version']}: its files are only on the instance that "
                             "published it (published before the fleet database kept release files): start "
                             "that instance, which shares them, or publish the release there again")
        if hashlib.sha256(raw).hexdigest() != rec["manifest_sha256"]:
            raise ShareError(f"{rec['component']} {rec['version']}: the manifest in the fleet database is not the "
                             "one published (SHA-256 differs): not served")
        R.parse_manifest(raw)
        fh.write(raw)

    def _once(self, target: Path, make: Callable[[Any], None]) -> None:
        """Run ``make`` with a connection of its own (closed after: the callers are the web
        server's worker threads, which come and go) unless ``target`` exists; callers asking for
        the same target meanwhile wait for that one run and share its outcome."""
        with self._lock:
            running = self._busy.get(target)
            mine: Future[None] | None = None
            if running is None:
                mine = self._busy[target] = Future()
        if mine is None:
            running.result()  # type: ignore[union-attr]
            return
        try:
            if not target.is_file():
                conn = self.store.db.connect()
                try:
                    make(conn)
                finally:
                    conn.close()
                with self._lock:
                    self.materialised += 1
            mine.set_result(None)
        except BaseException as exc:
            mine.set_exception(exc)
            raise
        finally:
            with self._lock:
                self._busy.pop(target, None)

    @staticmethod
    def _write(target: Path, fill: Callable[[IO[bytes]], None]) -> None:
        """``fill`` a temporary file beside ``target`` (it raises if the bytes are wrong), then
        make it ``target`` durably; nothing is left behind when it fails."""
        target.parent.mkdir(parents=True, exist_ok=True)
        tmp = target.with_name(f".{target.name}.{uuid.uuid4().hex}.tmp")
        try:
            with tmp.open("wb") as fh:
                fill(fh)
                fh.flush()
                os.fsync(fh.fileno())
            os.replace(tmp, target)
        finally:
            tmp.unlink(missing_ok=True)
        fd = os.open(target.parent, os.O_RDONLY)
        try:
            os.fsync(fd)  # the rename itself survives a power cut
        finally:
            os.close(fd)


def share_published(store: Any, data_dir: Path, now: float) -> dict[str, list[str]]:
    """Put into the fleet database every published release whose manifest is not there yet and
    whose files this instance has (checked against the registry and the manifest as they are
    copied). Returns ``{"shared": [...], "elsewhere": [...], "refused": [...]}`` ("component
    version"): the releases copied, those this instance does not have (their publisher shares
    them), and those whose files here are not what was published (logged; left out)."""
    out: dict[str, list[str]] = {"shared": [], "elsewhere": [], "refused": []}
    if not store.on_postgresql:
        return out
    conn = store.conn()
    for rec in store.releases():
        comp, version = rec["component"], rec["version"]
        if release_share.manifest(conn, comp, version) is not None:
            continue
        folder = release_dir(data_dir, comp, version)
        try:
            raw = (folder / R.MANIFEST_FILE).read_bytes()
        except FileNotFoundError:
            out["elsewhere"].append(f"{comp} {version}")
            continue
        try:
            if hashlib.sha256(raw).hexdigest() != rec["manifest_sha256"]:
                raise R.ReleaseRejected("bad_manifest", f"{folder / R.MANIFEST_FILE} is not the manifest it was "
                                                        "published with (SHA-256 differs)")
            release_share.store_bundle(conn, folder, R.parse_manifest(raw), now)
        except (R.ReleaseRejected, OSError) as exc:  # this copy is not the release: another instance's may be
            log.error("release %s %s not shared from this instance: %s", comp, version, exc)
            out["refused"].append(f"{comp} {version}")
            continue
        release_share.put_manifest(conn, comp, version, raw)
        out["shared"].append(f"{comp} {version}")
        log.info("release shared through the fleet database", extra={"fields": {"component": comp,
                                                                                  "version": version}})
    return out
