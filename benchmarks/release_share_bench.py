"""Release files shared through PostgreSQL: publish a large object on one instance, download it
from another.

    flock /work/heavy.lock nice -n 10 timeout 1500 .venv/bin/python benchmarks/release_share_bench.py
        [--mib 100] [--json]

A signed kiosk release with one object of ``--mib`` MiB of random bytes (it does not compress,
like a wheel) is published with :func:`controller.release_registry.publish` twice: into a SQLite
data folder (files only, the single-controller case) and into instance A's folder with the fleet
database on a private PostgreSQL (``tests.support.postgres``, ``fsync=off``), which also writes
the object into the database in 1 MiB chunks. Instance B (its own data folder, the same database)
serves the release over real HTTP (``controller.web.rollout_api``, uvicorn): the first download of
the object copies it from the database (checked, fsynced, renamed) and then serves it, the second
is served from B's folder. Reports the times, the table's size on disk and the process's peak
memory growth (the object is streamed, never held whole) as JSON (docs/benchmarks.md).
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import resource
import shutil
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey  # noqa: E402
from starlette.applications import Starlette  # noqa: E402

from contract import release as R  # noqa: E402
from controller import release_registry  # noqa: E402
from controller.fleet_db import FleetDb  # noqa: E402
from controller.rollout_job import RolloutJob  # noqa: E402
from controller.rollout_store import RolloutStore  # noqa: E402
from controller.web import rollout_api  # noqa: E402
from controller.web.serve import ConsoleServer  # noqa: E402
from tests.support.postgres import PostgresCluster  # noqa: E402

BLOCK = 1 << 20


def make_bundle(folder: Path, mib: int, now: int) -> tuple[Path, str]:
    """A signed bundle with one object of ``mib`` MiB of random bytes, written block by block."""
    objects = folder / R.OBJECTS_DIR
    objects.mkdir(parents=True)
    tmp, h = objects / "tmp", hashlib.sha256()
    with tmp.open("wb") as fh:
        for _ in range(mib):
            block = os.urandom(BLOCK)
            h.update(block)
            fh.write(block)
    sha = h.hexdigest()
    tmp.rename(objects / sha)
    doc = R.make_manifest("kiosk", "9.0.0", {"wheels/big-9.0.0-py3-none-any.whl": {"sha256": sha, "size": mib * BLOCK}},
                          min_from_version="0.0.0", created=now, expires=now + 86_400, key_id="rk-1")
    (folder / R.MANIFEST_FILE).write_bytes(R.parse_manifest(R.sign(Ed25519PrivateKey.generate(), doc)).raw())
    return folder, sha


def peak_mib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def timed(fn) -> tuple[float, object]:
    t0 = time.perf_counter()
    out = fn()
    return round(time.perf_counter() - t0, 2), out


def download(url: str) -> str:
    h = hashlib.sha256()
    with urllib.request.urlopen(url, timeout=600) as resp:
        while block := resp.read(BLOCK):
            h.update(block)
    return h.hexdigest()


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=(__doc__ or "").split("\n")[0])
    ap.add_argument("--mib", type=int, default=100)
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args(argv)
    tmp = Path(tempfile.mkdtemp(prefix="release-share-bench-"))
    cluster = PostgresCluster(Path(tempfile.mkdtemp(prefix="release-share-bench-pg-"))).start()
    server = None
    stores: list[RolloutStore] = []
    try:
        bundle, sha = make_bundle(tmp / "bundle", args.mib, int(time.time()))
        base_rss = peak_mib()
        url = cluster.create_database("fleet")
        sqlite_store = RolloutStore(tmp / "single")
        a = RolloutStore(FleetDb(tmp / "a", url))
        b = RolloutStore(FleetDb(tmp / "b", url))
        stores += [sqlite_store, a, b]
        t_sqlite, _ = timed(lambda: release_registry.publish(sqlite_store, tmp / "single", bundle, user="bench",
                                                             now=time.time()))
        t_pg, _ = timed(lambda: release_registry.publish(a, tmp / "a", bundle, user="bench", now=time.time()))
        job = RolloutJob(tmp / "b", b, send=None, audit=None, base_url="", clock=time.time)  # type: ignore[arg-type]
        server = ConsoleServer(Starlette(routes=rollout_api.routes(job)), "127.0.0.1:0")
        obj = f"{server.start().rstrip('/')}/releases/kiosk/9.0.0/objects/{sha}"
        t_first, got_first = timed(lambda: download(obj))
        t_second, got_second = timed(lambda: download(obj))
        assert got_first == got_second == sha, "downloaded bytes differ from the object"
        assert job.local_releases.materialised == 2  # the manifest and the object
        size = a.conn().execute("SELECT pg_total_relation_size('release_chunks')").fetchone()[0]
        out = {"mib": args.mib, "publish_sqlite_s": t_sqlite, "publish_postgresql_s": t_pg,
               "first_download_from_b_s": t_first, "second_download_from_b_s": t_second,
               "release_chunks_mib_on_disk": round(size / BLOCK, 1),
               "peak_memory_growth_mib": round(peak_mib() - base_rss, 1), "load": os.getloadavg()}
    finally:
        if server is not None:
            server.stop()
        for s in stores:
            s.close()
        cluster.stop()
        shutil.rmtree(cluster.workdir, ignore_errors=True)
        shutil.rmtree(tmp, ignore_errors=True)
    print(json.dumps(out) if args.json else "\n".join(f"{k:28} {v}" for k, v in out.items()))
    return 0


if __name__ == "__main__":
    sys.exit(main())
