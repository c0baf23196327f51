"""Service backend on the fleet database: queue tickets taken at once by several writers.

    .venv/bin/python benchmarks/service_queue_bench.py [--backend sqlite|postgresql|both]
        [--writers 4] [--tickets 250] [--json]

Each writer is one connection of its own, as a controller instance's service thread is, and
answers ``queue_ticket.take`` requests through the backend's own ``handle_request`` for kiosks of
the fleet registry, back to back. Two layouts: every writer's kiosks at one community centre (all
writers number one queue: on PostgreSQL they wait for each other on the site's advisory lock),
and one centre per writer (no shared queue). After each run every site's numbers must be unique
and gap-free (A001 .. Annn), else the run fails. PostgreSQL is a private cluster on a free
loopback port (``tests.support.postgres``, ``fsync=off``); SQLite is a file in a temporary
folder. Reports tickets per second and per-request latency (median, 99th percentile) as JSON
(docs/benchmarks.md). Loopback only; stops everything by itself.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import threading
import time
from collections import defaultdict
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from controller.fleet_db import FleetDb  # noqa: E402
from controller.service_backend import handle_request  # noqa: E402
from controller.service_backend.tables import open_tables  # noqa: E402
from controller.store import Store  # noqa: E402
from tests.support.postgres import PostgresCluster  # noqa: E402

NOW = 1_764_050_400.0  # 2025-11-25 14:00 in Shanghai: one local day for the whole run
TAKE = {"service": "queue_ticket", "op": "take", "args": {"counter": "general"}}


def _fleet(db: FleetDb, writers: int, one_site: bool) -> list[str]:
    """Two kiosks per writer in the registry; returns each writer's first kiosk."""
    store = Store(db.data_dir, db.url or None)
    with store.tx() as s:
        s.upsert_kiosks([{"kiosk_id": f"K-{w:02d}-{k}", "site": "centre" if one_site else f"centre-{w:02d}",
                          "state": "online", "last_seen": NOW, "state_since": NOW}
                         for w in range(writers) for k in range(2)])
    store.close()
    return [f"K-{w:02d}-0" for w in range(writers)]


def run(db: FleetDb, writers: int, tickets: int, one_site: bool) -> dict:
    kiosks = _fleet(db, writers, one_site)
    open_tables(db).close()
    latencies: list[float] = []
    refused: list[dict] = []
    lock = threading.Lock()
    start = threading.Barrier(writers + 1)

    def writer(kiosk: str) -> None:
        conn = open_tables(db)
        mine: list[float] = []
        try:
            start.wait()
            for i in range(tickets):
                t0 = time.perf_counter()
                r = handle_request(conn, kiosk if i % 2 == 0 else kiosk[:-1] + "1", TAKE, NOW)
                mine.append(time.perf_counter() - t0)
                if not r["ok"]:
                    with lock:
                        refused.append(r)
        finally:
            conn.close()
            with lock:
                latencies.extend(mine)

    threads = [threading.Thread(target=writer, args=(k,)) for k in kiosks]
    for t in threads:
        t.start()
    start.wait()
    t0 = time.perf_counter()
    for t in threads:
        t.join()
    seconds = time.perf_counter() - t0
    conn = open_tables(db)
    try:
        by_site: dict[str, list[int]] = defaultdict(list)
        for site, seq in conn.execute("SELECT site, seq FROM svc_tickets"):
            by_site[site].append(seq)
    finally:
        conn.close()
    gap_free = all(sorted(seqs) == list(range(1, len(seqs) + 1)) for seqs in by_site.values())
    if refused or not gap_free or sum(map(len, by_site.values())) != writers * tickets:
        raise SystemExit(f"numbering broken: {len(refused)} refused (first {refused[:1]}), gap-free {gap_free}")
    latencies.sort()
    return {"layout": "one centre" if one_site else "a centre per writer", "writers": writers,
            "tickets": writers * tickets, "seconds": round(seconds, 2),
            "tickets_per_s": round(writers * tickets / seconds), "gap_free": gap_free,
            "latency_ms": {"median": round(statistics.median(latencies) * 1000, 2),
                           "p99": round(latencies[int(0.99 * (len(latencies) - 1))] * 1000, 2)}}


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--backend", choices=("sqlite", "postgresql", "both"), default="both")
    p.add_argument("--writers", type=int, default=4, help="connections answering at once (controller instances)")
    p.add_argument("--tickets", type=int, default=250, help="tickets each writer takes")
    p.add_argument("--json", action="store_true", help="JSON only")
    args = p.parse_args(argv)
    out: dict[str, list[dict]] = {}
    with tempfile.TemporaryDirectory(prefix="svc-bench-") as tmp:
        if args.backend in ("sqlite", "both"):
            out["sqlite"] = [run(FleetDb(Path(tmp) / f"sqlite-{n}"), args.writers, args.tickets, one)
                             for n, one in enumerate((True, False))]
        if args.backend in ("postgresql", "both"):
            cluster = PostgresCluster(Path(tempfile.mkdtemp(prefix="kiosk-pg-bench-"))).start()
            try:
                out["postgresql"] = [run(FleetDb(Path(tmp) / f"pg-{n}", cluster.create_database(f"svc{n}")),
                                         args.writers, args.tickets, one) for n, one in enumerate((True, False))]
            finally:
                cluster.stop()
    print(json.dumps(out, indent=None if args.json else 2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
