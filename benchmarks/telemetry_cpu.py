"""Telemetry CPU benchmark: what province-rate telemetry costs the controller process alone.

    .venv/bin/python benchmarks/telemetry_cpu.py [--kiosks 26412] [--period 30] [--connections 200]
        [--workers 2] [--measure 60] [--database postgresql://...]

``--kiosks`` simulated kiosks (26,412 at 30 s is about 880 messages/s) send their birth and then
telemetry built by the contract's own builders (``payloads.birth``, ``payloads.telemetry`` and,
as a 1.2+ kiosk does, ``payloads.telemetry_delta`` between full snapshots) over ``--connections``
real MQTT connections to a private Mosquitto, spread evenly over the period. The controller runs
in its own process; after one period of warm-up its CPU (user + system, from ``/proc/PID/stat``
of that process only) is measured over ``--measure`` seconds. Then the load stops, the controller
is stopped cleanly, and the store must show every kiosk online with its latest telemetry.
Loopback only; bounded in time; stops everything by itself. Prints JSON (docs/benchmarks.md).
"""

from __future__ import annotations

import argparse
import json
import os
import random
import selectors
import shutil
import signal
import sqlite3
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from benchmarks.fleet_bench import _proc_stats, _raise_nofile, _ready, role_controller  # noqa: E402
from contract import payloads, topics  # noqa: E402
from controller.store import DB_NAME  # noqa: E402
from tests.support.broker import Mosquitto  # noqa: E402

GOAL_PERCENT = 15.0  # of one core, at 880 msg/s (issue 16)


def _reading(rnd: random.Random, held: dict[str, float], kid: str, now: float, start: float) -> dict:
    """A full snapshot from the contract's builder; the numbers wander like a real kiosk's."""
    for key, lo, hi, step in (("cpu", 1, 100, 8), ("memory", 10, 95, 2), ("temperature", 30, 80, 1.5)):
        held[key] = min(hi, max(lo, held.get(key, (lo + hi) / 2) + rnd.uniform(-step, step)))
    return payloads.telemetry(kid, ts=now, uptime=now - start, cpu=round(held["cpu"], 1),
                              memory=round(held["memory"], 1), disk=41.0, temperature=round(held["temperature"], 1),
                              enclosure_temperature=None, devices={"printer": "idle", "id_reader": "idle"},
                              queue_depth=0, mode="normal")


def role_kiosks(args: argparse.Namespace) -> None:
    host, port = "127.0.0.1", int(args.broker.rsplit(":", 1)[1])
    rnd = random.Random(args.worker)
    ids = [f"T{args.worker:02d}-{i:05d}" for i in range(args.count)]
    sel = selectors.DefaultSelector()
    conns = []
    for n in range(args.connections):
        c = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=f"tcpu-{args.worker}-{n}", protocol=mqtt.MQTTv5)
        c.max_queued_messages_set(0)
        c.connect(host, port, keepalive=60)
        sock = c.socket()
        if sock is None:
            raise RuntimeError(f"benchmark connection {n} to {host}:{port} has no socket after connecting")
        sel.register(sock, selectors.EVENT_READ, c)
        conns.append(c)
    start = time.time()
    qos, retain = topics.FLAGS["status"]
    for i, kid in enumerate(ids):
        conns[i % len(conns)].publish(topics.topic(kid, "status"), topics.encode(payloads.birth(
            kid, mode="normal", boot_id=f"boot-{kid}", site=f"site-{i % 97:02d}", versions={"app": "1.0"},
            devices=["printer", "id_reader"], ts=start)), qos, retain)
    next_t = {kid: start + 1 + rnd.random() * args.period for kid in ids}
    held: dict[str, dict[str, float]] = {kid: {} for kid in ids}
    last_sent: dict[str, dict] = {}
    sent_count: dict[str, int] = dict.fromkeys(ids, 0)
    total = 0
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())  # the measurement is over
    print("READY", flush=True)
    last_misc = 0.0
    while time.time() - start < args.duration and not stop.is_set():
        for key, _ in sel.select(timeout=0.01):
            key.data.loop_read()
        now = time.time()
        for i, kid in enumerate(ids):
            if next_t[kid] > now:
                continue
            full = _reading(rnd, held[kid], kid, now, start)
            if sent_count[kid] % payloads.FULL_EVERY == 0:
                body, last_sent[kid] = full, dict(full)
            else:
                body = payloads.telemetry_delta(last_sent[kid], full)
                last_sent[kid].update({k: v for k, v in body.items() if k != "delta"})
            conns[i % len(conns)].publish(topics.topic(kid, "telemetry"), topics.encode(body),
                                          *topics.FLAGS["telemetry"])
            sent_count[kid] += 1
            total += 1
            next_t[kid] += args.period
        for c in conns:
            if c.want_write():
                c.loop_write()
        if now - last_misc > 1.0:
            for c in conns:
                c.loop_misc()
            last_misc = now
    print(json.dumps({"sent": total, "seconds": round(time.time() - start, 1)}), flush=True)
    for c in conns:
        c.disconnect()


def _child(args: argparse.Namespace, role: str, *extra: str) -> subprocess.Popen:
    argv = [sys.executable, __file__, "--role", role, "--broker", args.broker, "--data", args.data,
            "--period", str(args.period), "--database", args.database, *extra]
    return subprocess.Popen(argv, stdout=subprocess.PIPE, text=True, preexec_fn=_raise_nofile,
                            env={**os.environ, "PYTHONPATH": str(ROOT)})


def _wait_all_online(args: argparse.Namespace, deadline: float) -> None:
    while time.monotonic() < deadline:
        try:
            if _check_store(args)["kiosks_online"] >= args.kiosks:
                return
        except sqlite3.Error:
            pass  # not created yet
        time.sleep(1.0)
    raise TimeoutError("the controller did not see every kiosk online within the warm-up")


def _check_store(args: argparse.Namespace) -> dict:
    """After the clean stop: every kiosk online, each with its latest telemetry written."""
    if args.database:
        import psycopg

        conn = psycopg.connect(args.database)
    else:
        conn = sqlite3.connect(f"file:{args.data}/{DB_NAME}?mode=ro", uri=True)  # type: ignore[assignment]
    try:
        rows = conn.execute("SELECT state, last_telemetry FROM kiosks").fetchall()
    finally:
        conn.close()
    return {"kiosks_stored": len(rows), "kiosks_online": sum(1 for s, _ in rows if s == "online"),
            "kiosks_with_telemetry": sum(1 for _, t in rows if t and t > 0)}


def orchestrate(args: argparse.Namespace) -> dict:
    _raise_nofile()
    work = Path(tempfile.mkdtemp(prefix="telemetry-cpu-"))
    broker = Mosquitto(work / "broker", extra_config=["max_connections -1"]).start()
    args.broker, args.data = broker.url, str(work / "controller")
    out: dict = {"kiosks": args.kiosks, "connections": args.connections * args.workers,
                 "period_s": args.period, "offered_msgs_per_s": round(args.kiosks / args.period, 1),
                 "backend": "postgresql" if args.database else "sqlite", "goal_percent": GOAL_PERCENT}
    procs: list[subprocess.Popen] = []
    try:
        ctl = _child(args, "controller")
        procs.append(ctl)
        _ready(ctl)
        per = args.kiosks // args.workers
        duration = 3 * args.period + args.measure + 60  # the kiosks outlast warm-up and measurement
        workers = [_child(args, "kiosks", "--worker", str(w), "--count", str(per + (w < args.kiosks % args.workers)),
                          "--connections", str(args.connections), "--duration", str(duration))
                   for w in range(args.workers)]
        procs += workers
        for p in workers:
            _ready(p)
        # Warm-up: every birth handled (the store shows all online), then one full period of telemetry.
        _wait_all_online(args, deadline=time.monotonic() + 300)
        time.sleep(args.period)
        cpu0, _ = _proc_stats(ctl.pid)
        t0 = time.monotonic()
        rss = 0
        while time.monotonic() - t0 < args.measure:
            rss = max(rss, _proc_stats(ctl.pid)[1])
            time.sleep(1.0)
        cpu1, _ = _proc_stats(ctl.pid)
        out["controller_cpu_percent"] = round(100 * (cpu1 - cpu0) / (time.monotonic() - t0), 1)
        out["controller_rss_mb"] = round(rss / 2**20, 1)
        for p in workers:
            p.send_signal(signal.SIGTERM)
        try:
            sent = [json.loads(p.communicate(timeout=120)[0].strip().splitlines()[-1]) for p in workers]
            out["sent_msgs_per_s"] = round(sum(s["sent"] for s in sent) / max(s["seconds"] for s in sent), 1)
        except subprocess.TimeoutExpired:
            out["sent_msgs_per_s"] = None  # a worker did not say in time (machine overloaded): CPU still stands
        ctl.send_signal(signal.SIGTERM)
        ctl.wait(60)
        out.update(_check_store(args))
        return out
    finally:
        for p in procs:
            if p.poll() is None:
                p.kill()
                p.wait()
        broker.stop()
        shutil.rmtree(work, ignore_errors=True)


def main() -> None:
    p = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    p.add_argument("--role", default="orchestrate", choices=["orchestrate", "controller", "kiosks"])
    p.add_argument("--kiosks", type=int, default=26412)
    p.add_argument("--period", type=float, default=30.0)
    p.add_argument("--connections", type=int, default=100, help="MQTT connections per worker process")
    p.add_argument("--workers", type=int, default=2)
    p.add_argument("--measure", type=float, default=60.0)
    p.add_argument("--database", default="", help="postgresql://... (default: the SQLite store)")
    p.add_argument("--broker", default="")
    p.add_argument("--data", default="")
    p.add_argument("--worker", type=int, default=0)
    p.add_argument("--count", type=int, default=0)
    p.add_argument("--duration", type=float, default=0.0)
    args = p.parse_args()
    if args.role == "controller":
        role_controller(args)
    elif args.role == "kiosks":
        role_kiosks(args)
    else:
        print(json.dumps(orchestrate(args)))


if __name__ == "__main__":
    main()
