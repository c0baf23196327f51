"""What the fleet benchmark reads back: the store on either backend, every kiosk checked, CPU per process.

``fleet_bench.py`` runs on the SQLite store (one controller) or on a private PostgreSQL cluster
(one or several instances); this module opens whichever it is, checks every simulated kiosk's
stored liveness and latest telemetry against what the simulator last sent, and accounts the CPU
of the processes involved (controllers, broker, PostgreSQL with its backends) so a reader can see
which part used the two cores.
"""

from __future__ import annotations

import json
import os
import signal
import sqlite3
import subprocess
from pathlib import Path
from typing import Any

from controller import store_pg
from controller.store import DB_NAME


def connect(database: str, data_dir: str) -> Any:
    """A connection to the controllers' store: PostgreSQL when ``database`` is a URL (autocommit),
    else the SQLite file in ``data_dir`` (autocommit, so queued actions are committed at once)."""
    if database.startswith(("postgresql://", "postgres://")):
        return store_pg.PgConnection(database)
    return sqlite3.connect(f"{data_dir}/{DB_NAME}", isolation_level=None, timeout=10)


def stop_processes(procs: list[subprocess.Popen], wait: float) -> None:
    """End the benchmark's child processes: each still running is continued (it may have been
    stopped with SIGSTOP) and terminated, then each gets ``wait`` seconds before it is killed."""
    for p in procs:
        if p.poll() is None:
            p.send_signal(signal.SIGCONT)
            p.terminate()
    for p in procs:
        try:
            p.wait(wait)
        except subprocess.TimeoutExpired:
            p.kill()


def _stat(pid: int) -> list[str] | None:
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except (OSError, IndexError):
        return None


def cpu_seconds(pids: list[int]) -> float:
    """User + system seconds of these processes (those that have ended count 0)."""
    total = 0.0
    for pid in pids:
        fields = _stat(pid)
        if fields:
            total += (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    return total


def rss_bytes(pid: int) -> int:
    fields = _stat(pid)
    return int(fields[21]) * os.sysconf("SC_PAGE_SIZE") if fields else 0


def postgres_pids(data_dir: Path) -> list[int]:
    """The postmaster of the cluster in ``data_dir`` and its children (backends, writer, WAL...)."""
    try:
        master = int((data_dir / "postmaster.pid").read_text().split()[0])
    except (OSError, ValueError, IndexError):
        return []
    pids = [master]
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            fields = _stat(int(entry))
            if fields and int(fields[1]) == master:
                pids.append(int(entry))
    return pids


def check_every_kiosk(conn: Any, expected: dict[str, dict[str, Any]], *, stale_after: float,
                      now: float) -> dict[str, Any]:
    """Each simulated kiosk's stored state and latest telemetry against the simulator's own record:
    ``expected[kiosk_id] = {"state": "online"|"offline", "last_sent": t, "telemetry": merged dict}``.
    A kiosk still connected whose last reading is older than ``stale_after`` at ``now`` must be
    ``stale`` (the load is over); within 2 s of that bound either state is right. Counts what is
    wrong and names a few examples, so a failure says which kiosk and which field."""
    stored = {r[0]: (r[1], r[2]) for r in conn.execute("SELECT kiosk_id, state, telemetry FROM kiosks")}
    missing, state_wrong, telemetry_wrong, examples = 0, 0, 0, []
    older, telemetry_examples = 0, []  # older: the stored reading is an earlier one than the last sent
    for kid, want in expected.items():
        if want["state"] == "online":
            silent = now - want["last_sent"]
            accepted = {"online"} if silent < stale_after - 2 else {"stale"} if silent > stale_after + 2 \
                else {"online", "stale"}
        else:
            accepted = {want["state"]}
        row = stored.get(kid)
        if row is None:
            missing += 1
            if len(examples) < 5:
                examples.append({"kiosk": kid, "missing": True})
            continue
        state, telemetry = row[0], json.loads(row[1] or "{}")
        if state not in accepted:
            state_wrong += 1
            if len(examples) < 5:
                examples.append({"kiosk": kid, "state": state, "expected": sorted(accepted)})
        if telemetry != want["telemetry"]:
            telemetry_wrong += 1
            older += (telemetry.get("ts") or 0) < (want["telemetry"].get("ts") or 0)
            if len(telemetry_examples) < 5:
                diff = {k: [telemetry.get(k), v] for k, v in want["telemetry"].items() if telemetry.get(k) != v}
                telemetry_examples.append({"kiosk": kid, "telemetry_stored_vs_sent": diff})
    return {"kiosks_checked": len(expected), "missing": missing, "state_wrong": state_wrong,
            "telemetry_wrong": telemetry_wrong, "telemetry_older_than_sent": older, "examples": examples,
            "telemetry_examples": telemetry_examples}
