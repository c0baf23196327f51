"""Controller downtime benchmark: one controller on SQLite SIGKILLed while kiosks keep sending events.

    .venv/bin/python benchmarks/downtime_bench.py                          # 5 min down at 500 events/s
    .venv/bin/python benchmarks/downtime_bench.py --down 20 --rate 50      # what the test suite does

A private Mosquitto with the broker settings ``kiosk-provision`` generates (``max_queued_messages
10000``), the real controller in its own process, ``--kiosks`` real kiosk agents (each with its
journal) sending ``--rate`` events/s in all. After ``--warmup`` s the controller is SIGKILLed; it
stays dead ``--down`` s while the kiosks go on; then it is started again, the kiosks send
``--after`` s more, and we wait until every journal is drained by the controller's acks. Loopback
only, bounded in time; prints JSON: events sent, stored, lost, duplicated, the most the journals
held at once, and how long the drain took after the restart. The goal: 0 lost, 0 duplicated.
"""

from __future__ import annotations

import argparse
import json
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from controller.store import connect  # noqa: E402
from foundation.backoff import Backoff  # noqa: E402
from foundation.settings import KioskConfig, from_mapping  # noqa: E402
from kiosk_ui.agent.agent import KioskAgent  # noqa: E402
from tests.support.broker import Mosquitto  # noqa: E402


def _controller(broker: Mosquitto, data: Path) -> subprocess.Popen:
    proc = subprocess.Popen([sys.executable, "-m", "tests.fleet.run_controller", "--broker", broker.url,
                             "--data-dir", str(data)], cwd=ROOT, stdout=subprocess.PIPE, text=True)
    assert proc.stdout is not None
    if proc.stdout.readline().strip() != "controller online":
        raise RuntimeError("the controller did not come online")
    return proc


def _stored(data: Path) -> list[str]:
    conn = connect(data, readonly=True)
    try:
        return [r[0] for r in conn.execute("SELECT id FROM events WHERE type = 'load'")]
    finally:
        conn.close()


def main() -> None:
    p = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    p.add_argument("--kiosks", type=int, default=50)
    p.add_argument("--rate", type=float, default=500.0, help="events per second over all kiosks")
    p.add_argument("--warmup", type=float, default=10.0)
    p.add_argument("--down", type=float, default=300.0, help="seconds the controller stays dead")
    p.add_argument("--after", type=float, default=10.0)
    p.add_argument("--drain-timeout", type=float, default=600.0)
    args = p.parse_args()
    tmp = Path(tempfile.mkdtemp(prefix="downtime-bench-"))
    broker = Mosquitto(tmp / "broker", extra_config=["max_queued_messages 10000"]).start()
    data = tmp / "controller"
    ctl = _controller(broker, data)
    agents: list[KioskAgent] = []
    try:
        for i in range(args.kiosks):
            cfg = from_mapping(KioskConfig, {"kiosk_id": f"K-BENCH-{i:05d}", "broker": broker.url, "keepalive": 5,
                                             "data_dir": str(tmp / f"kiosk-{i}")})
            agent = KioskAgent(cfg, backoff=Backoff(base=0.5, cap=5.0), max_events=100_000)
            agent.start(wait=30)
            agents.append(agent)
        ids: list[str] = []
        held = 0
        start = time.monotonic()
        phases = {"kill": args.warmup, "restart": args.warmup + args.down,
                  "stop": args.warmup + args.down + args.after}
        restarted_at = 0.0
        while True:
            elapsed = time.monotonic() - start
            due = int(elapsed * args.rate)
            while len(ids) < min(due, int(phases["stop"] * args.rate)):
                ids.append(agents[len(ids) % len(agents)].emit("load", {"n": len(ids)}))
            held = max(held, sum(a.journal.depth() for a in agents))
            if elapsed >= phases["kill"] and not restarted_at and ctl.poll() is None:
                ctl.send_signal(signal.SIGKILL)
                ctl.wait(10)
            if elapsed >= phases["restart"] and not restarted_at:
                ctl = _controller(broker, data)
                restarted_at = time.monotonic()
            if elapsed >= phases["stop"]:
                break
            time.sleep(0.01)  # pacing the load generator, not synchronisation
        deadline = time.monotonic() + args.drain_timeout
        while any(a.journal.depth() for a in agents) and time.monotonic() < deadline:
            time.sleep(0.2)
        drained = time.monotonic() - restarted_at
        stored = _stored(data)
        result = {
            "kiosks": args.kiosks, "rate": args.rate, "down_s": args.down, "sent": len(ids),
            "stored": len(stored), "lost": len(set(ids) - set(stored)), "duplicated": len(stored) - len(set(stored)),
            "max_journaled": held, "drain_after_restart_s": round(drained, 1),
            "resends": sum(a.sender.resends for a in agents),
            "left_in_journals": sum(a.journal.depth() for a in agents),
        }
        print(json.dumps(result))
    finally:
        for agent in agents:
            agent.stop()
        if ctl.poll() is None:
            ctl.terminate()
            ctl.wait(10)
        broker.stop()


if __name__ == "__main__":
    main()
