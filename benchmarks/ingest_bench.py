"""Ingest benchmark: the same queued burst of QoS-1 events drained by each consumer ALONE.

    .venv/bin/python benchmarks/ingest_bench.py [--burst 20000] [--postgres]
    .venv/bin/python benchmarks/ingest_bench.py --instances 2 [--burst 50000] [--repeat 3]

Each consumer first subscribes with a persistent session and goes away; the burst (real kiosk
event payloads from ``contract.payloads.event``, over ``--kiosks`` kiosk topics) is published
while it is away, so the broker queues it; then the consumer alone comes back and we time from
its start until it has everything: for the raw paho v5 QoS-1 subscriber, until it received the
burst; for the controller (SQLite, and with ``--postgres`` a private PostgreSQL cluster), until
the burst is stored and the controller has published its acknowledgements. Nothing else runs
meanwhile. Prints JSON: rates and the controller / raw ratio (goal >= 0.5, docs/benchmarks.md).

``--instances N``: controller instances on PostgreSQL (each its own process, shared subscriptions,
as a fleet runs them) together against one instance alone, each on the same queued burst: the
instances start and subscribe, are stopped (SIGSTOP, so the broker queues each one's share of the
burst on its connection), the burst is published, and they are continued together; timed until
the store holds the whole burst. Instances keep no session when they go away (mosquitto #1747),
hence SIGSTOP rather than a disconnect. Prints the rates, the ratio (goal >= 1.6) and the CPU of
the controllers, the broker and PostgreSQL over each drain, as % of one core.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from pathlib import Path

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from benchmarks import fleet_store  # noqa: E402
from benchmarks.fleet_bench import _raise_nofile, _ready  # noqa: E402
from contract import payloads, signing, topics  # noqa: E402
from contract.mqtt_client import make_client  # noqa: E402
from foundation.settings import ControllerConfig, from_mapping, parse_broker_url  # noqa: E402
from tests.support.broker import Mosquitto  # noqa: E402


def _burst(broker: Mosquitto, n: int, kiosks: int) -> None:
    pub = make_client(f"bench-pub-{uuid.uuid4().hex[:6]}", parse_broker_url(broker.url))
    pub.connect("127.0.0.1", broker.port)
    pub.loop_start()
    infos = []
    for i in range(n):
        kiosk = f"K-ING-{i % kiosks:04d}"
        body = payloads.event(kiosk, event_id=uuid.uuid4().hex, boot_id="b", seq=i, ts=time.time(), type="burst",
                              fields={"n": i})
        infos.append(pub.publish(topics.topic(kiosk, "events"), topics.encode(body), 1))
        if len(infos) >= 500:
            infos.pop(0).wait_for_publish(30)
    for info in infos:
        info.wait_for_publish(30)
    pub.loop_stop()
    pub.disconnect()


def _raw(broker: Mosquitto, n: int, kiosks: int) -> float:
    got = threading.Event()
    count = [0]

    def on_message(c, u, m) -> None:
        count[0] += 1
        if count[0] >= n:
            got.set()

    def session() -> mqtt.Client:
        c = mqtt.Client(CallbackAPIVersion.VERSION2, client_id="bench-raw", protocol=mqtt.MQTTv5)
        c.on_message = on_message
        props = Properties(PacketTypes.CONNECT)
        props.SessionExpiryInterval = 3600
        c.connect("127.0.0.1", broker.port, clean_start=False, properties=props)
        return c

    c = session()
    c.subscribe("kiosk/v1/+/events", 1)
    c.loop_start()
    time.sleep(0.5)  # let SUBACK arrive before leaving: the session then queues the burst
    c.loop_stop()
    c.disconnect()
    _burst(broker, n, kiosks)
    start = time.monotonic()
    c = session()
    c.loop_start()
    got.wait(600)
    elapsed = time.monotonic() - start
    c.loop_stop()
    c.disconnect()
    return count[0] / elapsed


def _controller(broker: Mosquitto, n: int, kiosks: int, data: Path, database: str) -> float:
    from controller.server import Controller

    cfg = from_mapping(ControllerConfig, {"broker": broker.url, "data_dir": str(data), "client_id": "bench-ctl",
                                          "database": database, "keepalive": 10})
    c = Controller(cfg)
    c.start()
    time.sleep(1.0)  # subscribed (persistent session) before it goes away
    c.stop()
    _burst(broker, n, kiosks)
    start = time.monotonic()
    c = Controller(cfg)
    c.start()
    try:
        while c.counts.get("events_new", 0) < n and time.monotonic() - start < 600:
            time.sleep(0.01)
        return c.counts.get("events_new", 0) / (time.monotonic() - start)
    finally:
        c.stop()


def _instances(broker: Mosquitto, cluster, n: int, burst: int, kiosks: int, work: Path, run: str) -> dict:
    """``n`` controller instances (processes) drain the same queued burst together: rate and CPU."""
    url = cluster.create_database(f"ingest_{run}")
    key = work / "key" / signing.KEY_FILE
    signing.load_or_create_key(work / "key")
    procs = [subprocess.Popen([sys.executable, str(ROOT / "benchmarks" / "fleet_bench.py"), "--role", "controller",
                               "--broker", broker.url, "--data", str(work / f"{run}-{i}"), "--period", "30",
                               "--database", url, "--instance", f"i{i}", "--signing-key", str(key)],
                              stdout=subprocess.PIPE, text=True, preexec_fn=_raise_nofile, cwd=ROOT)
             for i in range(n)]
    try:
        for p in procs:
            _ready(p)
        time.sleep(1.0)  # subscribed (SUBACK in) before they are stopped
        for p in procs:
            p.send_signal(signal.SIGSTOP)
        _burst(broker, burst, kiosks)
        pids = {"controllers": [p.pid for p in procs], "broker": [broker.proc.pid] if broker.proc else [],
                "postgresql": fleet_store.postgres_pids(cluster.workdir / "data")}
        cpu0 = {k: fleet_store.cpu_seconds(v) for k, v in pids.items()}
        conn = fleet_store.connect(url, "")
        load = os.getloadavg()[0]
        start = time.monotonic()
        for p in procs:
            p.send_signal(signal.SIGCONT)
        stored = 0
        while stored < burst and time.monotonic() - start < 600:
            time.sleep(0.05)  # polling the store's count, not synchronisation
            stored = conn.execute("SELECT COUNT(*) FROM events WHERE type = 'burst'").fetchone()[0]
        elapsed = time.monotonic() - start
        cpu = {k: round(100 * (fleet_store.cpu_seconds(v) - cpu0[k]) / elapsed, 1) for k, v in pids.items()}
        conn.close()
        return {"instances": n, "stored": stored, "stored_per_s": round(stored / elapsed),
                "seconds": round(elapsed, 2), "cpu_percent_of_one_core": cpu, "load_average_at_start": round(load, 1)}
    finally:
        fleet_store.stop_processes(procs, 30)


def _compare_instances(broker: Mosquitto, args: argparse.Namespace, tmp: Path) -> dict:
    from tests.support.postgres import PostgresCluster

    cluster = PostgresCluster(tmp / "pg").start()
    try:
        runs = []
        for r in range(args.repeat):
            one = _instances(broker, cluster, 1, args.burst, args.kiosks, tmp, f"r{r}_one")
            many = _instances(broker, cluster, args.instances, args.burst, args.kiosks, tmp, f"r{r}_many")
            runs.append({"one": one, "together": many, "ratio": round(many["stored_per_s"] / one["stored_per_s"], 2)})
        return {"burst": args.burst, "kiosks": args.kiosks, "instances": args.instances, "goal_ratio": 1.6,
                "runs": runs, "median_ratio": sorted(r["ratio"] for r in runs)[len(runs) // 2]}
    finally:
        cluster.stop()


def main() -> None:
    p = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    p.add_argument("--burst", type=int, default=20000)
    p.add_argument("--kiosks", type=int, default=1000)
    p.add_argument("--postgres", action="store_true", help="also measure the controller on PostgreSQL")
    p.add_argument("--instances", type=int, default=0,
                   help="N >= 2: N instances on PostgreSQL together against one alone (nothing else)")
    p.add_argument("--repeat", type=int, default=1, help="with --instances: measure both this many times")
    args = p.parse_args()
    tmp = Path(tempfile.mkdtemp(prefix="ingest-bench-"))
    tmp.chmod(0o755)  # the postgres user enters it when we run as root
    broker = Mosquitto(tmp / "broker", extra_config=["max_queued_messages 0"]).start()
    if args.instances:
        try:
            print(json.dumps(_compare_instances(broker, args, tmp)))
        finally:
            broker.stop()
            shutil.rmtree(tmp, ignore_errors=True)
        return
    out: dict = {"burst": args.burst}
    cluster = None
    try:
        out["raw_msgs_per_s"] = round(_raw(broker, args.burst, args.kiosks))
        out["sqlite_stored_per_s"] = round(_controller(broker, args.burst, args.kiosks, tmp / "sqlite", ""))
        out["sqlite_ratio"] = round(out["sqlite_stored_per_s"] / out["raw_msgs_per_s"], 2)
        if args.postgres:
            from tests.support.postgres import PostgresCluster

            pg_dir = Path(tempfile.mkdtemp(prefix="ingest-bench-pg-"))
            cluster = PostgresCluster(pg_dir).start()
            url = cluster.create_database("ingest")
            out["postgres_stored_per_s"] = round(_controller(broker, args.burst, args.kiosks, tmp / "pg", url))
            out["postgres_ratio"] = round(out["postgres_stored_per_s"] / out["raw_msgs_per_s"], 2)
        print(json.dumps(out))
    finally:
        if cluster is not None:
            cluster.stop()
            shutil.rmtree(cluster.workdir, ignore_errors=True)
        broker.stop()
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
