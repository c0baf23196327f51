"""Fail-over benchmark: several controller instances on one PostgreSQL, SIGKILLed at random under load.

    .venv/bin/python benchmarks/failover_bench.py       # issue 16: 3 instances, 1,000 kiosks, 100,000 events, 10 kills
    .venv/bin/python benchmarks/failover_bench.py --kiosks 200 --events 20000 --kills 5

A private Mosquitto (``max_queued_messages 10000``, as ``kiosk-provision`` writes it) and a
private PostgreSQL cluster; ``--instances`` real controller processes (``instance`` set: shared
subscriptions, the singleton-jobs lease); ``--kiosks`` real kiosk agents, each with its journal,
sending ``--events`` events with unique ids at ``--rate`` events/s in all. Every ``--every`` s a
random instance is SIGKILLed and started again ``--down`` s later, ``--kills`` times. Then we wait
until every journal is drained by the controllers' acknowledgements. Prints JSON: events sent,
stored, lost, duplicated rows; per kill, how long until the kiosks started re-sending and, when
the lease holder was killed, until another instance took the singleton jobs over. Goal (issue 16):
0 lost, 0 duplicated, re-send within 5 s, hand-over within 10 s.
"""

from __future__ import annotations

import argparse
import json
import random
import signal
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from contract import signing  # noqa: E402
from controller import store_pg  # noqa: E402
from foundation.backoff import Backoff  # noqa: E402
from foundation.settings import KioskConfig, from_mapping  # noqa: E402
from kiosk_ui.agent.agent import KioskAgent  # noqa: E402
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


def main() -> None:
    p = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    p.add_argument("--instances", type=int, default=3)
    p.add_argument("--kiosks", type=int, default=1000)
    p.add_argument("--events", type=int, default=100_000)
    p.add_argument("--rate", type=float, default=500.0, help="events per second over all kiosks")
    p.add_argument("--kills", type=int, default=10)
    p.add_argument("--every", type=float, default=15.0, help="seconds between kills")
    p.add_argument("--down", type=float, default=3.0, help="seconds a killed instance stays dead")
    p.add_argument("--drain-timeout", type=float, default=600.0)
    p.add_argument("--seed", type=int, default=16)
    args = p.parse_args()
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
    agents: list[KioskAgent] = []
    try:
        for i in range(args.kiosks):
            cfg = from_mapping(KioskConfig, {"kiosk_id": f"K-FO-{i:05d}", "broker": broker.url, "keepalive": 5,
                                             "data_dir": str(tmp / f"kiosk-{i}"),
                                             "controller_public_key": public})
            agent = KioskAgent(cfg, backoff=Backoff(base=0.5, cap=5.0), max_events=100_000, ack_wait=10.0)
            agent.start(wait=60)
            agents.append(agent)
        ids: list[str] = []
        start = time.monotonic()
        seen: dict[str, int] = {}
        holder = ""
        kills: list[dict] = []  # per kill: when, re-sends before, whether the holder, and the figures
        while len(ids) < args.events or dead or any(k["open"] for k in kills):
            now = time.monotonic()
            due = min(args.events, int((now - start) * args.rate))
            while len(ids) < due:
                ids.append(agents[len(ids) % len(agents)].emit("load", {"n": len(ids)}))
            took = _new_holder(ctls, seen)
            resends = sum(a.resends for a in agents)
            for k in kills:
                if k["open"] and k["resend"] is None and resends > k["resends"]:
                    k["resend"] = round(now - k["at"], 2)
                if k["open"] and k["holder"] and k["handover"] is None and took:
                    k["handover"] = round(now - k["at"], 2)
                k["open"] = now - k["at"] < 60 and (k["resend"] is None or (k["holder"] and k["handover"] is None))
            holder = took or holder
            if len(kills) < args.kills and now - start >= (len(kills) + 1) * args.every and len(ids) < args.events:
                victim = rng.choice([n for n in names if n not in dead])
                ctls[victim].signal(signal.SIGKILL)
                ctls[victim].proc.wait(10)
                kills.append({"at": now, "resends": resends, "holder": victim == holder, "resend": None,
                              "handover": None, "open": True})
                dead[victim] = now
            for name, at in list(dead.items()):
                if now - at >= args.down:
                    ctls[name] = _instance(broker, tmp, name, url, key)
                    seen[name] = 0
                    del dead[name]
            time.sleep(0.01)  # pacing the load generator, not synchronisation
        deadline = time.monotonic() + args.drain_timeout
        while any(a.journal.depth() for a in agents) and time.monotonic() < deadline:
            time.sleep(0.2)
        stored = _stored(url)
        print(json.dumps({
            "instances": args.instances, "kiosks": args.kiosks, "rate": args.rate, "kills": len(kills),
            "sent": len(ids), "stored": len(stored), "lost": len(set(ids) - set(stored)),
            "duplicated": len(stored) - len(set(stored)), "resend_after_kill_s": [k["resend"] for k in kills],
            "lease_handover_s": [k["handover"] for k in kills if k["holder"]], "run_s": round(time.monotonic() - start, 1),
            "left_in_journals": sum(a.journal.depth() for a in agents),
        }))
    finally:
        for agent in agents:
            agent.stop()
        for c in ctls.values():
            c.stop()
        broker.stop()
        pg.stop()


if __name__ == "__main__":
    main()
