"""Fail-over benchmark: several controller instances on one PostgreSQL, SIGKILLed at random under load.

    .venv/bin/python benchmarks/failover_bench.py       # issue 16: 3 instances, 1,000 kiosks, 100,000 events, 10 kills
    .venv/bin/python benchmarks/failover_bench.py --kiosks 200 --events 20000 --kills 5

A private Mosquitto (``max_queued_messages 10000``, as ``kiosk-provision`` writes it) and a
private PostgreSQL cluster; ``--instances`` real controller processes (``instance`` set: shared
subscriptions, the singleton-jobs lease); ``--kiosks`` simulated kiosks, each with its own MQTT
connection and journal, sending ``--events`` events with unique ids at ``--rate`` events/s in all,
from load processes of ``--per-process`` kiosks each. ``--agents light`` (the default): many kiosks
on one thread per process (``benchmarks/light_kiosks.py``: the product's journal, event sender and
re-send rule, the contract's payloads); ``--agents full``: a whole ``KioskAgent`` per kiosk (four
threads each: 1,000 of them starve two cores). Before the load, the load processes' CPU is
measured idle for ``--idle-probe`` s, then during the load. Every ``--every`` s a
random instance is SIGKILLed and started again ``--down`` s later, ``--kills`` times. Then we wait
until every journal is drained by the controllers' acknowledgements. Prints JSON: events sent,
stored, lost, duplicated rows; per kill, how long until the kiosks started re-sending and, when
the lease holder was killed, until another instance took the singleton jobs over. Goal (issue 16):
0 lost, 0 duplicated, re-send within 5 s, hand-over within 10 s.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import shutil
import signal
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from benchmarks.fleet_bench import _raise_nofile  # noqa: E402
from benchmarks.light_kiosks import LightFleet, LightKiosk  # noqa: E402
from contract import signing  # noqa: E402
from controller import store_pg  # noqa: E402
from foundation.backoff import Backoff  # noqa: E402
from foundation.settings import KioskConfig, from_mapping, parse_broker_url  # noqa: E402
from kiosk_ui.agent.agent import KioskAgent  # noqa: E402
from kiosk_ui.agent.event_sender import ACK_WAIT  # noqa: E402
from tests.support.broker import Mosquitto  # noqa: E402
from tests.support.postgres import PostgresCluster  # noqa: E402
from tests.support.processes import Proc  # noqa: E402

LEASE_LINE = "now runs the fleet's singleton jobs"


def _instance(broker: Mosquitto, tmp: Path, name: str, url: str, key: Path) -> Proc:
    ctl = Proc([sys.executable, "-m", "tests.fleet.run_controller", "--broker", broker.url, "--data-dir",
                str(tmp / f"ctl-{name}"), "--database", url, "--instance", name, "--signing-key", str(key)],
               cwd=ROOT)
    ctl.wait_for("controller online", 60)
    return ctl


def _new_holder(ctls: dict[str, Proc], seen: dict[str, int]) -> str:
    """The instance that said it took the singleton-jobs lease since we last looked, or ""."""
    found = ""
    for name, ctl in ctls.items():
        n = sum(LEASE_LINE in line for line in ctl.stderr_lines)
        if n > seen.get(name, 0):
            seen[name], found = n, name
    return found


def _stored(url: str) -> list[str]:
    conn = store_pg.PgConnection(url)
    try:
        return [r[0] for r in conn.execute("SELECT id FROM events WHERE type = 'load'")]
    finally:
        conn.close()


def _status_figures(url: str) -> dict[str, Any]:
    """Kiosks not online now (by state:reason; a clean stop is the load process finishing), and statuses of an older connection ignored so far (issue 16's stamp)."""
    conn = store_pg.PgConnection(url)
    try:
        down = {f"{r[0]}:{r[1]}": int(r[2]) for r in conn.execute(
            "SELECT state, reason, COUNT(*) FROM kiosks WHERE state <> 'online' AND reason <> 'shutdown' "
            "GROUP BY state, reason")}
        late = conn.execute("SELECT value FROM counters WHERE name = 'status_superseded'").fetchone()
        return {"kiosks_not_online": down, "status_superseded": int(late[0]) if late else 0}
    finally:
        conn.close()


class _FullAgents:
    """Whole kiosk agents (four threads each), stepped by their own threads."""

    def __init__(self, args: argparse.Namespace, tmp: Path) -> None:
        self.kiosks: list[KioskAgent] = []
        for i in range(args.first, args.first + args.count):
            cfg = from_mapping(KioskConfig, {"kiosk_id": f"K-FO-{i:05d}", "broker": args.broker, "keepalive": 5,
                                             "data_dir": str(tmp / f"kiosk-{i}"), "controller_public_key": args.public})
            agent = KioskAgent(cfg, backoff=Backoff(base=0.5, cap=5.0), max_events=100_000, ack_wait=ACK_WAIT)
            agent.start(wait=120)
            self.kiosks.append(agent)

    def step(self, timeout: float) -> None:
        time.sleep(timeout)  # pacing the load generator, not synchronisation

    def stop(self) -> None:
        for agent in self.kiosks:
            agent.stop()


def _light_fleet(args: argparse.Namespace, tmp: Path) -> LightFleet:
    broker = parse_broker_url(args.broker)
    fleet = LightFleet([LightKiosk(f"K-FO-{i:05d}", broker, tmp / f"kiosk-{i}", keepalive=5, ack_wait=ACK_WAIT)
                        for i in range(args.first, args.first + args.count)])
    deadline = time.monotonic() + 120
    while not all(k.connected and k.presence for k in fleet.kiosks):
        if time.monotonic() > deadline:
            raise TimeoutError(f"{sum(k.connected for k in fleet.kiosks)} of {len(fleet.kiosks)} connected")
        fleet.step(0.02)
    return fleet


def producer(args: argparse.Namespace) -> None:
    """One load process: ``--count`` kiosks from ``--first`` (full agents: paho's ``select()`` loop
    cannot watch descriptors above 1024, about 150 agents a process), ``--events`` events at
    ``--rate`` once GO comes on stdin. Prints READY, a line RESEND <unix time> <kiosks> whenever
    kiosks sent unacknowledged events again, then DONE <still journaled> <timed re-sends> once
    every journal is drained (the ids it sent are in ``--ids``)."""
    tmp = Path(args.tmp)
    fleet = _light_fleet(args, tmp) if args.agents == "light" else _FullAgents(args, tmp)
    kiosks = fleet.kiosks
    go: list[str] = []
    threading.Thread(target=lambda: go.append(sys.stdin.readline()), daemon=True).start()
    print("READY", flush=True)
    while not go:
        fleet.step(0.02)
    ids: list[str] = []
    counted = [k.sender.resends for k in kiosks]
    start = time.monotonic()
    deadline = start + args.events / args.rate + args.drain_timeout
    while (len(ids) < args.events or any(k.journal.depth() for k in kiosks)) and time.monotonic() < deadline:
        due = min(args.events, int((time.monotonic() - start) * args.rate))
        while len(ids) < due:
            ids.append(kiosks[len(ids) % len(kiosks)].emit("load", {"n": len(ids)}))
        now_counts = [k.sender.resends for k in kiosks]
        grew = sum(1 for now, before in zip(now_counts, counted, strict=True) if now > before)
        if grew:
            counted = now_counts
            print(f"RESEND {time.time():.3f} {grew}", flush=True)
        fleet.step(0.02)
    Path(args.ids).write_text("\n".join(ids))
    # What is still journaled (not yet acknowledged) is not lost: the kiosk would send it again.
    held = [e for k in kiosks for _s, _t, _p, e in k.journal.pending(0, limit=10**7) if e]
    Path(args.ids + ".held").write_text("\n".join(held))
    print(f"DONE {sum(k.journal.depth() for k in kiosks)} {sum(k.sender.timed_resends for k in kiosks)}", flush=True)
    fleet.stop()


def _cpu_seconds(pids: list[int]) -> float:
    """User + system CPU seconds of these processes so far (/proc/PID/stat)."""
    total = 0
    for pid in pids:
        try:
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        total += int(fields[11]) + int(fields[12])
    return total / os.sysconf("SC_CLK_TCK")


def main() -> None:
    p = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    p.add_argument("--instances", type=int, default=3)
    p.add_argument("--kiosks", type=int, default=1000)
    p.add_argument("--events", type=int, default=100_000)
    p.add_argument("--rate", type=float, default=500.0, help="events per second over all kiosks")
    p.add_argument("--kills", type=int, default=10)
    p.add_argument("--every", type=float, default=15.0, help="seconds between kills")
    p.add_argument("--down", type=float, default=3.0, help="seconds a killed instance stays dead")
    p.add_argument("--agents", choices=["light", "full"], default="light",
                   help="light: many simulated kiosks per thread; full: a whole KioskAgent per kiosk")
    p.add_argument("--per-process", type=int, default=0, help="kiosks per load process (light 250, full 125)")
    p.add_argument("--idle-probe", type=float, default=10.0, help="seconds the load processes' idle CPU is measured")
    p.add_argument("--drain-timeout", type=float, default=600.0)
    p.add_argument("--seed", type=int, default=16)
    # the load processes' own options (started by main)
    for name in ("--producer", "--tmp", "--broker", "--public", "--ids"):
        p.add_argument(name, help=argparse.SUPPRESS)
    p.add_argument("--first", type=int, default=0, help=argparse.SUPPRESS)
    p.add_argument("--count", type=int, default=0, help=argparse.SUPPRESS)
    args = p.parse_args()
    if args.producer:
        _raise_nofile()  # a light process's kiosks hold a socket and a journal's three files each
        producer(args)
        return
    args.per_process = args.per_process or (250 if args.agents == "light" else 125)
    rng = random.Random(args.seed)
    tmp = Path(tempfile.mkdtemp(prefix="failover-bench-"))
    tmp.chmod(0o755)  # the postgres user enters it when we run as root
    pg = PostgresCluster(tmp / "pg").start()
    broker = Mosquitto(tmp / "broker", extra_config=["max_queued_messages 10000"]).start()
    public = signing.public_key_text(signing.load_or_create_key(tmp / "key"))
    key = tmp / "key" / signing.KEY_FILE
    url = pg.url()
    names = [chr(ord("a") + i) for i in range(args.instances)]
    ctls = {n: _instance(broker, tmp, n, url, key) for n in names}
    dead: dict[str, float] = {}
    loads: list[Proc] = []
    try:
        slices = [(f, min(args.per_process, args.kiosks - f)) for f in range(0, args.kiosks, args.per_process)]
        for n, (first, count) in enumerate(slices):
            share = args.events * count // args.kiosks
            loads.append(Proc([sys.executable, str(Path(__file__).resolve()), "--producer", "1", "--tmp", str(tmp),
                               "--broker", broker.url, "--public", public, "--ids", str(tmp / f"ids-{n}"),
                               "--first", str(first), "--count", str(count), "--events", str(share),
                               "--rate", str(args.rate * count / args.kiosks), "--agents", args.agents,
                               "--drain-timeout", str(args.drain_timeout)], cwd=ROOT))
        for load in loads:
            load.wait_for("READY", 300)
        pids = [ld.proc.pid for ld in loads]
        cpu_idle = _cpu_seconds(pids)
        time.sleep(args.idle_probe)  # measuring the idle load generator over this window
        cpu_idle = _cpu_seconds(pids) - cpu_idle
        for load in loads:
            assert load.proc.stdin is not None
            load.proc.stdin.write("GO\n")
            load.proc.stdin.flush()
        cpu_load = _cpu_seconds(pids)
        loadavg = [os.getloadavg()[0]]
        start = time.monotonic()
        seen: dict[str, int] = {}
        holder = ""
        kills: list[dict] = []  # per kill: when, whether the holder, and the figures
        emitting = args.events / args.rate
        at_load_end: dict[str, Any] = {}
        while not all(any(line.startswith("DONE") for line in ld.stdout_lines) for ld in loads):
            now = time.monotonic()
            if not at_load_end and now - start >= emitting:
                cpu_load = _cpu_seconds(pids) - cpu_load
                at_load_end = _status_figures(url)  # the agents are all still connected here
            if now - start >= 5 * len(loadavg):
                loadavg.append(os.getloadavg()[0])
            took = _new_holder(ctls, seen)
            for k in kills:
                if k["holder"] and k["handover"] is None and took and now - k["at"] < 60:
                    k["handover"] = round(now - k["at"], 2)
            holder = took or holder
            if len(kills) < args.kills and now - start >= (len(kills) + 1) * args.every and now - start < emitting:
                victim = rng.choice([n for n in names if n not in dead])
                # The kill's time is taken before the signal: the kiosks may re-send before wait() returns.
                kills.append({"at": now, "wall": time.time(), "holder": victim == holder, "handover": None})
                ctls[victim].signal(signal.SIGKILL)
                ctls[victim].proc.wait(10)
                dead[victim] = now
            for name, at in list(dead.items()):
                if now - at >= args.down:
                    ctls[name] = _instance(broker, tmp, name, url, key)
                    seen[name] = 0
                    del dead[name]
            time.sleep(0.02)  # polling the processes' output, not synchronisation
        resends = sorted((float(line.split()[1]), int(line.split()[2])) for ld in loads for line in ld.stdout_lines
                         if line.startswith("RESEND"))
        for k in kills:
            after = [(t - k["wall"], n) for t, n in resends if t >= k["wall"]]
            k["resend"] = round(min(after)[0], 2) if after else None
            window = min([5.0] + [o["wall"] - k["wall"] for o in kills if o["wall"] > k["wall"]])
            k["kiosks_in_5s"] = sum(n for t, n in after if t <= window)  # re-sends, counted per kiosk
        ids = [i for n in range(len(loads)) for i in (tmp / f"ids-{n}").read_text().split()]
        held = {i for n in range(len(loads)) for i in (tmp / f"ids-{n}.held").read_text().split()}
        stored = _stored(url)
        print(json.dumps({
            "instances": args.instances, "kiosks": args.kiosks, "rate": args.rate, "kills": len(kills),
            "sent": len(ids), "stored": len(stored), "not_stored_yet": len(set(ids) - set(stored)),
            "lost": len(set(ids) - set(stored) - held),
            "duplicated": len(stored) - len(set(stored)), "resend_after_kill_s": [k["resend"] for k in kills],
            "kiosks_resending_within_5s": [k["kiosks_in_5s"] for k in kills],
            "lease_handover_s": [k["handover"] for k in kills if k["holder"]],
            "run_s": round(time.monotonic() - start, 1), "agents": args.agents,
            # % of one core (the machine has two), all load processes together
            "generator_cpu_pct": {"idle": round(100 * cpu_idle / args.idle_probe, 1),
                                  "load": round(100 * cpu_load / emitting, 1) if at_load_end else None},
            "load_average": [round(min(loadavg), 1), round(max(loadavg), 1)],
            "at_end_of_load": at_load_end,
            "left_in_journals": sum(int(line.split()[1]) for ld in loads for line in ld.stdout_lines
                                    if line.startswith("DONE")),
            # re-sends because an acknowledgement wait ran out (not the presence): 0 means every
            # event a dead instance held was sent again on its will, none waited for ACK_WAIT
            "timed_resends": sum(int(line.split()[2]) for ld in loads for line in ld.stdout_lines
                                 if line.startswith("DONE")),
        }))
    finally:
        for load in loads:
            load.stop()
        for c in ctls.values():
            c.stop()
        broker.stop()
        pg.stop()
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
