"""Release files shared through the fleet database (issue 16): a release published on instance A
is served by instance B, which copies each file from PostgreSQL into its own data folder, checked,
once however many kiosks ask at the same moment; a damaged chunk is refused, never served.

Two instances' release routes (controller/web/rollout_api.py, served over real HTTP by uvicorn),
each with its own data folder, on one real PostgreSQL database; downloads by urllib and by the
kiosk's own downloader (kiosk_ui/updater/fetch.py)."""

from __future__ import annotations

import hashlib
import os
import shutil
import time
import urllib.error
import urllib.request

import pytest
from starlette.applications import Starlette

from contract import release as R
from controller import pg_parts, release_registry, release_share, sql_dialect
from controller.fleet_db import FleetDb
from controller.rollout_job import RolloutJob
from controller.rollout_store import RolloutStore
from controller.web import app as console_app
from controller.web import rollout_api
from controller.web.auth import HTTPProblem
from controller.web.serve import ConsoleServer
from kiosk_ui.updater.fetch import Fetcher
from provisioning import release_build as B
from tests.support.together import at_once
from tests.support.waiting import wait_until
from tests.support.wheels import make_wheel
from tests.updates.probe import Releases


def build(tmp_path, version: str, big: bytes) -> tuple:
    """A signed bundle with one wheel of ``big`` (uncompressible, over 1 MiB: several chunks)."""
    rel = Releases(tmp_path / f"rel-{version}", int(time.time()))
    wheels = tmp_path / f"wheels-{version}"
    make_wheel(wheels, "big", version, {"big.py": f"D = {big.hex()!r}\n"})
    bundle = tmp_path / f"bundle-{version}"
    B.build_kiosk(bundle, version=version, wheels=wheels, now=rel.now)
    B.sign_bundle(bundle, rel.key, "rk-1")
    return bundle, R.parse_manifest((bundle / R.MANIFEST_FILE).read_bytes())


class Instance:
    """One controller instance's release serving: its data folder, roll-out store and HTTP routes."""

    def __init__(self, name: str, url: str, tmp_path) -> None:
        self.data = tmp_path / f"ctl-{name}"
        FleetDb(self.data, url).open_migrated().close()  # the fleet store's tables, which the roll-out job reads
        self.store = RolloutStore(FleetDb(self.data, url))
        self.job = RolloutJob(self.data, self.store, send=None, audit=None, base_url="",  # type: ignore[arg-type]
                              clock=time.time)
        app = Starlette(routes=rollout_api.routes(self.job), exception_handlers={HTTPProblem: console_app._problem})
        self.server = ConsoleServer(app, "127.0.0.1:0")
        self.url = self.server.start().rstrip("/")

    def release_url(self, version: str) -> str:
        return f"{self.url}/releases/kiosk/{version}"

    def close(self) -> None:
        self.server.stop()
        self.store.close()


@pytest.fixture
def pair(postgres_url, tmp_path):
    made = [Instance("a", postgres_url, tmp_path), Instance("b", postgres_url, tmp_path)]
    yield made
    for inst in made:
        inst.close()


@pytest.fixture
def published(pair, tmp_path):
    """Release 2.0.0 (a wheel of about 3.6 MB: four chunks) published on instance A."""
    a, _ = pair
    bundle, man = build(tmp_path, "2.0.0", os.urandom(3_500_000))
    release_registry.publish(a.store, a.data, bundle, user="rel", now=time.time())
    return bundle, man


def get(url: str, headers: dict | None = None) -> tuple[int, bytes, dict]:
    req = urllib.request.Request(url, headers=headers or {})
    try:
        with urllib.request.urlopen(req, timeout=30) as resp:
            return resp.status, resp.read(), dict(resp.headers)
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read(), dict(exc.headers)


def big_entry(man: R.Manifest) -> R.FileEntry:
    return max(man.files, key=lambda e: e.size)


def test_a_release_published_on_one_instance_is_served_by_another(pair, published, tmp_path):
    a, b = pair
    bundle, man = published
    entry = big_entry(man)
    assert entry.size > 3 * release_share.CHUNK
    conn = b.store.conn()
    assert conn.execute("SELECT count(*) FROM release_objects").fetchone()[0] == len(man.files)
    assert conn.execute("SELECT chunks FROM release_objects WHERE sha256 = ?", (entry.sha256,)).fetchone()[0] == (
        -(-entry.size // release_share.CHUNK))
    assert not (b.data / "releases").exists()  # B has nothing of it on disk

    status, body, _ = get(f"{b.release_url('2.0.0')}/{R.MANIFEST_FILE}")
    assert status == 200 and body == (bundle / R.MANIFEST_FILE).read_bytes()
    want = R.object_path(bundle, entry.sha256).read_bytes()
    status, body, headers = get(f"{b.release_url('2.0.0')}/objects/{entry.sha256}",
                                {"Range": "bytes=1000000-2500000"})  # across a chunk boundary
    assert status == 206 and body == want[1_000_000:2_500_001]
    assert headers["content-range"] == f"bytes 1000000-2500000/{entry.size}"
    # The kiosk's own downloader, against B, gets every file of the release, verified.
    fetcher = Fetcher(b.release_url("2.0.0"), tmp_path / "kiosk-objects", sleep=time.sleep)
    assert fetcher.manifest() == (bundle / R.MANIFEST_FILE).read_bytes()
    for e in man.files:
        assert fetcher.ensure(e).read_bytes() == R.object_path(bundle, e.sha256).read_bytes()
    # B now serves from its own folder: each file was copied once, and nothing half-written is left.
    assert b.job.local_releases.materialised == 1 + len(man.files)
    assert f"kiosk_release_files_materialised_total {1 + len(man.files)}\n" in rollout_api.render_metrics(b.job)
    objects = release_registry.release_dir(b.data, "kiosk", "2.0.0") / R.OBJECTS_DIR
    assert sorted(p.name for p in objects.iterdir()) == sorted(e.sha256 for e in man.files)
    assert get(f"{b.release_url('2.0.0')}/objects/{'0' * 64}")[0] == 404  # not in this release
    # An object already in the database is not written again (content-addressed, shared).
    assert release_share.store_bundle(a.store.conn(), bundle, man, time.time()) == 0


def test_a_damaged_chunk_is_refused_not_served(pair, published):
    a, b = pair
    _, man = published
    entry = big_entry(man)
    conn = a.store.conn()
    conn.execute("UPDATE release_chunks SET data = overlay(data PLACING '\\x00ff'::bytea FROM 100) "
                 "WHERE sha256 = ? AND n = 1", (entry.sha256,))
    status, body, _ = get(f"{b.release_url('2.0.0')}/objects/{entry.sha256}")
    assert status == 502 and b"in the fleet database is damaged" in body and b"not served" in body
    objects = release_registry.release_dir(b.data, "kiosk", "2.0.0") / R.OBJECTS_DIR
    assert not (objects / entry.sha256).exists() and [p.name for p in objects.iterdir()] == []  # no temp file
    assert get(f"{b.release_url('2.0.0')}/objects/{entry.sha256}", {"Range": "bytes=0-99"})[0] == 502
    # A damaged manifest is refused too (it is checked against the hash the registry recorded).
    conn.execute("UPDATE release_manifests SET body = body || '\\x20'::bytea")
    shutil.rmtree(b.data / "releases")  # B copies the manifest again
    status, body, _ = get(f"{b.release_url('2.0.0')}/{R.MANIFEST_FILE}")
    assert status == 502 and b"not the one published" in body


def test_concurrent_requests_copy_the_file_once(pair, published):
    _, b = pair
    bundle, man = published
    entry = big_entry(man)
    url = f"{b.release_url('2.0.0')}/objects/{entry.sha256}"
    got = at_once(lambda _: get(url), range(6))
    want = R.object_path(bundle, entry.sha256).read_bytes()
    assert [(s, body == want) for s, body, _ in got] == [(200, True)] * 6
    assert b.job.local_releases.materialised == 2  # the manifest and the object, once each


def test_a_release_published_before_is_shared_by_its_publisher_at_start(pair, published, tmp_path):
    a, b = pair
    bundle, man = published
    conn = a.store.conn()
    for table in ("release_manifests", "release_objects", "release_chunks"):  # as an older controller left it
        conn.execute(f"DELETE FROM {table}")
    status, body, _ = get(f"{b.release_url('2.0.0')}/{R.MANIFEST_FILE}")
    assert status == 502 and b"only on the instance that published it" in body
    assert b.job.share_releases() == {"shared": [], "elsewhere": ["kiosk 2.0.0"], "refused": []}  # B lacks it
    # A copy that is not the release (a file changed on disk) is left out, never shared.
    obj = R.object_path(release_registry.release_dir(a.data, "kiosk", "2.0.0"), man.files[0].sha256)
    good = obj.read_bytes()
    obj.write_bytes(good[:-1])
    assert a.job.share_releases() == {"shared": [], "elsewhere": [], "refused": ["kiosk 2.0.0"]}
    assert release_share.manifest(conn, "kiosk", "2.0.0") is None
    obj.write_bytes(good)
    a.job.start()  # as the controller starts it: the releases of its folder go into the database beside the job
    try:
        wait_until(lambda: release_share.manifest(conn, "kiosk", "2.0.0") is not None, 20, "release shared")
    finally:
        a.job.stop()
    assert conn.execute("SELECT count(*) FROM release_objects").fetchone()[0] == len(man.files)
    assert a.job.share_releases() == {"shared": [], "elsewhere": [], "refused": []}  # once
    fetcher = Fetcher(b.release_url("2.0.0"), tmp_path / "kiosk-objects", sleep=time.sleep)
    assert fetcher.manifest() == (bundle / R.MANIFEST_FILE).read_bytes()
    for e in man.files:
        assert fetcher.ensure(e).read_bytes() == R.object_path(bundle, e.sha256).read_bytes()


def test_an_older_database_migrates_and_its_publisher_shares_what_it_published(postgres_url, tmp_path, monkeypatch):
    # The state a controller of the previous release left: the roll-outs track at version 1 (no
    # release file tables), the release registered, its files only in the publisher's folder.
    bundle, man = build(tmp_path, "2.0.0", os.urandom(50_000))
    monkeypatch.setitem(pg_parts.PARTS, "rollouts", pg_parts.PARTS["rollouts"][:1])
    older = RolloutStore(FleetDb(tmp_path / "ctl-a", postgres_url))
    raw = (bundle / R.MANIFEST_FILE).read_bytes()
    shutil.copytree(bundle, release_registry.release_dir(tmp_path / "ctl-a", "kiosk", "2.0.0"))
    older.add_release({"component": "kiosk", "version": "2.0.0", "manifest_sha256": hashlib.sha256(raw).hexdigest(),
                       "size": man.total_size, "files": len(man.files), "published_by": "rel",
                       "published_at": time.time(), "expires_at": float(man.expires)})
    assert "release_chunks" not in sql_dialect.tables(older.conn())
    older.close()
    monkeypatch.undo()

    a, b = Instance("a", postgres_url, tmp_path), Instance("b", postgres_url, tmp_path)
    try:
        conn = b.store.conn()
        assert conn.execute("SELECT version FROM part_schema WHERE part = 'rollouts'").fetchone()[0] == 2
        assert {"release_chunks", "release_objects", "release_manifests"} <= sql_dialect.tables(conn)
        assert get(f"{b.release_url('2.0.0')}/{R.MANIFEST_FILE}")[0] == 502
        assert a.job.share_releases() == {"shared": ["kiosk 2.0.0"], "elsewhere": [], "refused": []}
        status, body, _ = get(f"{b.release_url('2.0.0')}/{R.MANIFEST_FILE}")
        assert status == 200 and body == raw
        for e in man.files:
            assert get(f"{b.release_url('2.0.0')}/objects/{e.sha256}")[1] == R.object_path(bundle, e.sha256).read_bytes()
    finally:
        a.close()
        b.close()
