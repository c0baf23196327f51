"""Published release files in the fleet database (PostgreSQL), so that every controller instance
serves the releases any of them published.

What is stored (tables of the ``rollouts`` part, ``controller.pg_parts``):

- ``release_chunks(sha256, n, data)``: each object (content-addressed by its SHA-256) in pieces of
  :data:`CHUNK` bytes, read from its file one piece at a time (a 512 MiB wheel never sits in memory);
- ``release_objects(sha256, size, chunks)``: written last, in the transaction that wrote the
  chunks, after the bytes streamed in were hashed and found equal to the name: an object whose row
  is there is complete, and a half-written one is never seen. Writers of one object take an
  advisory lock on its hash, so two instances publishing the same wheel write it once;
- ``release_manifests(component, version, body)``: the manifest bytes, written by
  :meth:`controller.rollout_store.RolloutStore.add_release` in the transaction that registers the
  release, so a registered release always has its manifest here.

The functions take a PostgreSQL connection of the fleet database (``controller.store_pg``); the
serving side (``controller.release_local``) copies what it reads into its data folder, checked.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from pathlib import Path
from typing import Any

from contract import release as R
from controller import sql_dialect
from foundation.errors import KioskError

CHUNK = 1 << 20
LOCKS = 16020  # pg_advisory_xact_lock(int, int) class: one lock per object (hashtext of its SHA-256)


class ShareError(KioskError):
    """A release file in the fleet database is missing or damaged (never served)."""


def has_object(conn: Any, sha256: str) -> bool:
    return conn.execute("SELECT 1 FROM release_objects WHERE sha256 = ?", (sha256,)).fetchone() is not None


def store_object(conn: Any, path: Path, entry: R.FileEntry, now: float) -> bool:
    """Copy the file at ``path`` (``entry`` of a manifest) into the database unless it is there;
    True when this call wrote it. The bytes are hashed as they stream in and the transaction rolls
    back (``ReleaseRejected``) if they are not the object the manifest names."""
    if has_object(conn, entry.sha256):
        return False
    with conn.raw.transaction():
        sql_dialect.lock(conn, LOCKS, entry.sha256)
        if has_object(conn, entry.sha256):  # another instance wrote it while we waited
            return False
        conn.execute("DELETE FROM release_chunks WHERE sha256 = ?", (entry.sha256,))  # none; never trust it
        h, size, n = hashlib.sha256(), 0, 0
        with Path(path).open("rb") as fh:
            while block := fh.read(CHUNK):
                h.update(block)
                conn.execute("INSERT INTO release_chunks (sha256, n, data) VALUES (?, ?, ?)", (entry.sha256, n, block))
                size += len(block)
                n += 1
        if size != entry.size:
            raise R.ReleaseRejected("size_mismatch", f"{entry.path}: {size} bytes, the manifest says {entry.size}")
        if h.hexdigest() != entry.sha256:
            raise R.ReleaseRejected("hash_mismatch", f"{entry.path}: SHA-256 differs from the manifest")
        conn.execute("INSERT INTO release_objects (sha256, size, chunks, stored_at) VALUES (?, ?, ?, ?)",
                     (entry.sha256, size, n, now))
    return True


def store_bundle(conn: Any, folder: Path, man: R.Manifest, now: float) -> int:
    """Every object of the bundle at ``folder`` into the database; the number written (the others
    were there already: content-addressed, shared between releases)."""
    return sum(store_object(conn, R.object_path(folder, entry.sha256), entry, now) for entry in man.files)


def put_manifest(conn: Any, component: str, version: str, raw: bytes) -> None:
    """Record a release's manifest bytes (a release's manifest never changes: the first one stays)."""
    conn.execute("INSERT INTO release_manifests (component, version, body) VALUES (?, ?, ?)"
                 " ON CONFLICT (component, version) DO NOTHING", (component, version, raw))


def manifest(conn: Any, component: str, version: str) -> bytes | None:
    row = conn.execute("SELECT body FROM release_manifests WHERE component = ? AND version = ?",
                       (component, version)).fetchone()
    return bytes(row[0]) if row else None


def read_object(conn: Any, entry: R.FileEntry, sink: Callable[[bytes], Any]) -> None:
    """Hand the object's bytes to ``sink`` one chunk at a time, and check them against ``entry``
    (size and SHA-256) once all are read: ``ShareError`` names what is wrong. A caller must keep
    what it received aside until this returns (the last chunk may be the bad one)."""
    row = conn.execute("SELECT size, chunks FROM release_objects WHERE sha256 = ?", (entry.sha256,)).fetchone()
    if row is None:
        raise ShareError(f"{entry.path} ({entry.sha256[:12]}…) is not in the fleet database: "
                         "publish the release again from the instance that has its files")
    h, size = hashlib.sha256(), 0
    for n in range(int(row[1])):
        got = conn.execute("SELECT data FROM release_chunks WHERE sha256 = ? AND n = ?", (entry.sha256, n)).fetchone()
        if got is None:
            raise ShareError(f"{entry.path} ({entry.sha256[:12]}…): chunk {n} of {row[1]} is missing "
                             "in the fleet database")
        block = bytes(got[0])
        h.update(block)
        size += len(block)
        sink(block)
    if size != entry.size or h.hexdigest() != entry.sha256:
        raise ShareError(f"{entry.path} ({entry.sha256[:12]}…) in the fleet database is damaged "
                         f"({size} bytes, SHA-256 {h.hexdigest()[:12]}…; the manifest says {entry.size} bytes): "
                         "not served")


def check_object(conn: Any, entry: R.FileEntry) -> None:
    """Read the object back from the database and check it (``kioskctl move-store``)."""
    read_object(conn, entry, lambda block: None)
