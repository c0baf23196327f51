"""Roll-out benchmark (issue 15, fleet side): 1,000 simulated kiosks, a release that fails on 5 %
of the kiosks in wave 2.

The controller runs as ``kiosk-controller`` (``python -m controller.cli``) in its own process,
with its roll-out job, against a real Mosquitto. The release is a real signed bundle published
and rolled out with ``kioskctl releases publish`` / ``kioskctl rollout create``. The kiosks are
light simulations, many per MQTT connection, that speak the real contract: a retained birth
saying they run release 1.0.0, ``cmd/update`` parsed and signature-checked with
contract/commands.py, one ``cmd/update/result``, then ``update/state`` downloading -> installed
-> switched -> committed after a simulated health window (``--window`` s, jittered), or
``rolled_back`` for the failing ones. Reported: time per wave, when and why the roll-out paused,
how many kiosks ran the failing release before it paused (goal: at most 0.5 % of the fleet), the
controller's CPU time and peak memory during the roll-out.

    .venv/bin/python benchmarks/rollout_bench.py [--kiosks 1000] [--fail 0.05] [--window 1.0] [--error 0.01]
        [--error-min 1] [--failure-budget 0.005] [--postgres]

Roll-out options not given are kioskctl's defaults.
"""

from __future__ import annotations

import argparse
import hashlib
import heapq
import json
import math
import os
import random
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

import paho.mqtt.client as mqtt  # noqa: E402
from paho.mqtt.enums import CallbackAPIVersion  # noqa: E402

from contract import commands, payloads, signing, updates  # noqa: E402
from contract import topics as fleet  # noqa: E402
from controller import ctl as kioskctl  # noqa: E402
from controller import rollouts as RO  # noqa: E402
from controller.fleet_db import FleetDb  # noqa: E402
from controller.rollout_store import RolloutStore  # noqa: E402
from foundation.errors import KioskError  # noqa: E402
from tests.support.broker import Mosquitto  # noqa: E402
from tests.updates.probe import Releases  # noqa: E402


class Timers:
    """One thread firing callbacks at their due time (the simulated kiosks' progress)."""

    def __init__(self) -> None:
        self.heap: list[tuple[float, int, Callable[[], None]]] = []
        self.cond = threading.Condition()
        self.n = 0
        self.stop = False
        threading.Thread(target=self._run, daemon=True).start()

    def at(self, due: float, fn: Callable[[], None]) -> None:
        with self.cond:
            self.n += 1
            heapq.heappush(self.heap, (due, self.n, fn))
            self.cond.notify()

    def _run(self) -> None:
        while True:
            with self.cond:
                while not self.stop and (not self.heap or self.heap[0][0] > time.monotonic()):
                    self.cond.wait(max(0.0, self.heap[0][0] - time.monotonic()) if self.heap else 1.0)
                if self.stop:
                    return
                _, _, fn = heapq.heappop(self.heap)
            fn()


class SimFleet:
    """``kiosks`` simulated kiosks over ``conns`` MQTT connections."""

    def __init__(self, port: int, kiosk_ids: list[str], public_key: str, *, conns: int, window: float,
                 seed: int = 7) -> None:
        self.key = signing.parse_public_key(public_key)
        self.window = window
        self.rng = random.Random(seed)
        self.failing: set[str] = set()
        self.got_update: dict[str, float] = {}
        self.timers = Timers()
        self.clients = []
        per = math.ceil(len(kiosk_ids) / conns)
        for i in range(conns):
            mine = kiosk_ids[i * per:(i + 1) * per]
            c = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=f"sim-{i}", protocol=mqtt.MQTTv5)
            c.user_data_set(mine)
            c.on_connect = self._on_connect
            c.on_message = self._on_message
            c.connect("127.0.0.1", port)
            c.loop_start()
            self.clients.append(c)

    def _on_connect(self, client, mine, flags, rc, props) -> None:
        client.subscribe([(f"{fleet.ROOT}/{kid}/cmd/+", 1) for kid in mine])
        for kid in mine:
            body = payloads.birth(kid, mode="normal", boot_id="b-" + kid, site=f"site-{int(kid[1:]) % 50:02d}",
                                  versions={"agent": "sim", "release": "1.0.0"}, devices=[], ts=time.time())
            client.publish(fleet.topic(kid, "status"), fleet.encode(body), *fleet.FLAGS["status"])
        self.timers.at(time.monotonic() + 10, lambda: self._telemetry(client, mine))

    def _telemetry(self, client, mine) -> None:
        """Every 10 s, as live kiosks do (or the controller would call them stale and skip them)."""
        for kid in mine:
            body = payloads.telemetry(kid, ts=time.time(), uptime=1.0, cpu=None, memory=None, disk=None,
                                      temperature=None, enclosure_temperature=None, devices={}, queue_depth=0,
                                      mode="normal")
            client.publish(fleet.topic(kid, "telemetry"), fleet.encode(body), *fleet.FLAGS["telemetry"])
        if not self.timers.stop:
            self.timers.at(time.monotonic() + 10, lambda: self._telemetry(client, mine))

    def _on_message(self, client, mine, msg) -> None:
        kid = msg.topic.split("/")[2]
        try:
            body = commands.parse(msg.topic, msg.payload, kid)
            commands.verify(body, self.key, time.time(), lambda *_: True)  # one update per kiosk
            commands.check_args(body["name"], body.get("args", {}))
        except KioskError as exc:
            print(f"sim {kid}: refused a command: {exc}", file=sys.stderr)
            return
        res = commands.result(body["id"], kid, "ok", data={"accepted": body["args"].get("version")})
        client.publish(fleet.topic(kid, f"cmd/{body['name']}/result"), fleet.encode(res), *fleet.FLAGS["cmd/result"])
        if body["name"] != "update":
            return
        args = body["args"]
        self.got_update[kid] = time.monotonic()
        t0 = time.monotonic()
        steps = [("downloading", 0.05, ""), ("installed", 0.15, ""), ("switched", 0.25, "")]
        end = 0.25 + self.window * self.rng.uniform(0.5, 1.5)
        steps.append(("rolled_back", end, "crashed: exit status 1 (simulated)") if kid in self.failing
                     else ("committed", end, ""))
        for state, after, reason in steps:
            self.timers.at(t0 + after, lambda s=state, r=reason: client.publish(
                fleet.topic(kid, "update/state"),
                fleet.encode(updates.state(kid, state=s, version=args["version"], ts=time.time(), reason=r,
                                           running=args["version"] if s in ("switched", "committed") else "1.0.0",
                                           rollout=args.get("rollout", ""), command=body["id"])),
                *fleet.FLAGS["update/state"]))

    def close(self) -> None:
        self.timers.stop = True
        for c in self.clients:
            c.disconnect()
            c.loop_stop()


def proc_usage(pid: int) -> tuple[float, int]:
    """(CPU seconds user+system, peak RSS bytes) of a process, from /proc."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    cpu = (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    hwm = next(int(line.split()[1]) * 1024 for line in Path(f"/proc/{pid}/status").read_text().splitlines()
               if line.startswith("VmHWM:"))
    return cpu, hwm


DATABASE: list[str] = []  # kioskctl's --database when the controller runs on PostgreSQL (--postgres)


def ctl(data_dir: Path, *argv: str) -> dict:
    import contextlib
    import io

    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        code = kioskctl.main(["--data-dir", str(data_dir), *DATABASE, "--user", "bench", "--json", *argv])
    if code != 0:
        raise SystemExit(f"kioskctl {' '.join(argv)} failed ({code})")
    return json.loads(out.getvalue())


def main() -> int:
    p = argparse.ArgumentParser(description=(__doc__ or "").split("\n")[0])
    p.add_argument("--kiosks", type=int, default=1000)
    p.add_argument("--conns", type=int, default=10, help="MQTT connections the simulated kiosks share")
    p.add_argument("--fail", type=float, default=0.05, help="share of wave 2 whose health window fails")
    p.add_argument("--window", type=float, default=1.0, help="simulated health window, seconds (jittered 0.5-1.5x)")
    p.add_argument("--canary", type=int, default=10)
    p.add_argument("--waves", default="5,40,100")
    p.add_argument("--max-in-flight", type=int, default=25)
    p.add_argument("--timeout", type=float, default=600.0)
    p.add_argument("--error", help="error threshold, a share of each wave (default: kioskctl's)")
    p.add_argument("--error-min", help="error threshold, at least this many kiosks (default: kioskctl's)")
    p.add_argument("--failure-budget", help="kiosks that may run a failing release, a share of the roll-out's "
                                            "(default: kioskctl's)")
    p.add_argument("--postgres", action="store_true",
                   help="the controller's fleet database (roll-outs included) on a private PostgreSQL")
    args = p.parse_args()
    tmp = Path(tempfile.mkdtemp(prefix="rollout-bench-"))
    broker = Mosquitto(tmp / "broker").start()
    data = tmp / "controller"
    cluster, url, config = None, "", []
    if args.postgres:  # the fleet database, roll-outs included, on a private PostgreSQL
        from tests.support.postgres import PostgresCluster

        cluster = PostgresCluster(Path(tempfile.mkdtemp(prefix="rollout-bench-pg-"))).start()
        url = cluster.create_database("fleet")
        DATABASE.extend(["--database", url])
        (tmp / "controller.toml").write_text(f'database = "{url}"\n')
        config = ["--config", str(tmp / "controller.toml")]
    proc = subprocess.Popen([sys.executable, "-m", "controller.cli", *config, "--broker", broker.url, "--data-dir",
                             str(data), "--http", "127.0.0.1:0", "--log-level", "WARNING"], cwd=REPO,
                            stdout=subprocess.PIPE, text=True)
    fleet_sim = None
    try:
        if proc.stdout is None:
            raise SystemExit("the kiosk-controller process has no stdout pipe")
        while "console" not in (line := proc.stdout.readline()):
            if not line:
                raise SystemExit("kiosk-controller did not start")
        public_key = signing.public_key_text(signing.load_or_create_key(data))
        ids = [f"K{i:04d}" for i in range(args.kiosks)]
        fleet_sim = SimFleet(broker.port, ids, public_key, conns=args.conns, window=args.window)
        deadline = time.monotonic() + 60
        while len(ctl_status := ctl(data, "status", "--state", "online")) < args.kiosks:
            if time.monotonic() > deadline:
                raise SystemExit(f"only {len(ctl_status)} of {args.kiosks} kiosks online")
            time.sleep(0.5)
        rel = Releases(tmp / "rel", int(time.time()))
        ctl(data, "releases", "publish", str(rel.bundle("2.0.0")))
        cpu0, _ = proc_usage(proc.pid)
        t0 = time.monotonic()
        # Options not given are kioskctl's defaults, as an operator's plain "rollout create" gets them.
        options = [x for flag, value in (("--error", args.error), ("--error-min", args.error_min),
                                         ("--failure-budget", args.failure_budget)) if value for x in (flag, value)]
        r = ctl(data, "rollout", "create", "2.0.0", "--id", "bench", "--base-url", "https://ctl.example/releases",
                "--canary", str(args.canary), "--waves", args.waves, "--max-in-flight", str(args.max_in_flight),
                "--success", "0.9", "--timeout", str(args.timeout), *options)
        wave2 = sorted(k for k, v in r["kiosks"].items() if v["wave"] == 2)
        n_fail = math.ceil(len(wave2) * args.fail) if args.fail else 0
        fleet_sim.failing = set(sorted(wave2, key=lambda k: hashlib.sha256(k.encode()).hexdigest())[:n_fail])
        store = RolloutStore(FleetDb(data, url))
        wave_start, wave_end = {0: t0}, {}
        while True:
            cur = store.get("bench")
            if cur is None:
                raise SystemExit("roll-out 'bench' is missing from the fleet database")
            now = time.monotonic()
            wave_start.setdefault(cur["wave"], now)
            for w in range(cur["wave"]):
                wave_end.setdefault(w, now)
            if cur["status"] in ("paused", "completed", "aborted"):
                wave_end.setdefault(cur["wave"], now)
                break
            if now - t0 > args.timeout:
                raise SystemExit("roll-out did not finish")
            time.sleep(0.05)
        elapsed = time.monotonic() - t0
        cpu1, hwm = proc_usage(proc.pid)
        ran_bad = sorted(k for k in fleet_sim.failing if k in fleet_sim.got_update)
        prog = {w["wave"]: w for w in RO.progress(cur)}
        result = {
            "kiosks": args.kiosks, "database": "postgresql" if args.postgres else "sqlite", "waves": [prog[w]["total"] for w in sorted(prog)],
            "failing_in_wave2": n_fail, "status": cur["status"], "reason": cur["reason"],
            "options": {k: cur[k] for k in ("error_threshold", "error_min", "failure_budget", "max_in_flight")},
            "wave_seconds": {w: round(wave_end[w] - wave_start[w], 2) for w in sorted(wave_end)},
            "ran_failing_release": len(ran_bad), "ran_failing_pct_of_fleet": round(100 * len(ran_bad) / args.kiosks, 2),
            "updates_sent": len(fleet_sim.got_update), "elapsed_s": round(elapsed, 2),
            "controller_cpu_s": round(cpu1 - cpu0, 2), "controller_cpu_pct": round(100 * (cpu1 - cpu0) / elapsed, 1),
            "controller_peak_rss_mb": round(hwm / 2**20, 1),
        }
        print(json.dumps(result, indent=1))
        if args.fail and result["ran_failing_pct_of_fleet"] > 0.5:
            print("GOAL MISSED: more than 0.5 % of the fleet ran the failing release", file=sys.stderr)
            return 1
        return 0
    finally:
        if fleet_sim is not None:
            fleet_sim.close()
        proc.terminate()
        proc.wait(20)
        broker.stop()
        if cluster is not None:
            cluster.stop()


if __name__ == "__main__":
    sys.exit(main())
