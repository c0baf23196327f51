"""Rural 4G link benchmark: does a kiosk stay online, and are commands and services fast enough?

    .venv/bin/python benchmarks/rural_link.py [--latency 0.3] [--loss 0.05] [--kbit 64] [--rounds 40] [--json]

The same real deployment as ``benchmarks/link_bytes.py`` (TLS Mosquitto, the controller, one kiosk
with its own certificate), real time (telemetry 30 s, keepalive 10 s), with the kiosk's link shaped
by the proxy (``tests/support/link_proxy.py``): ``--latency`` seconds each way, ``--loss`` per
1460-byte segment (a lost segment arrives one retransmission timeout late, ``max(0.2 s, 2 x RTT)``,
and holds up what follows it), ``--kbit`` kbit/s each way. Each round sends one command
(``collect_diagnostics``: the result carries the kiosk's telemetry, a few hundred bytes) and makes
one resident-service call (``queue_ticket``/``take`` through the kiosk's service client to the
controller's service backend). Measured:

* command: ``send_command`` -> the controller stores ``succeeded``; goal p95 <= 5 s;
* service: the kiosk's ``call`` -> its answer; goal p95 <= 3 s;
* online: the controller's view of the kiosk, sampled every 0.25 s, and the proxy's count of
  connections (a reconnect means the link dropped the session); goal: online throughout, 0 reconnects.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks.link_bytes import KIOSK, Deployment  # noqa: E402
from kiosk_ui.service_client.over_mqtt import MqttServiceClient  # noqa: E402
from tests.support.link_proxy import Shape  # noqa: E402
from tests.support.waiting import poll  # noqa: E402


def p95(values: list[float]) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(0.95 * (len(ordered) - 1))))]


def summary(values: list[float]) -> dict[str, float]:
    return {"n": len(values), "p50": round(statistics.median(values), 3), "p95": round(p95(values), 3),
            "max": round(max(values), 3)}


def run(shape: Shape, rounds: int, seed: int) -> dict[str, Any]:
    with tempfile.TemporaryDirectory(prefix="rural-link-") as tmp:
        dep = Deployment(Path(tmp), speed=1.0, seed=seed)
        try:
            rt = dep.start_kiosk()
            svc = MqttServiceClient(rt.agent)
            dep.quiet(0.5)
            dep.proxy.set_shape(shape)
            dep.proxy.reset_counts()
            states: list[str] = []
            sampling = threading.Event()

            def sample() -> None:
                while not sampling.wait(0.25):
                    states.append((dep.kiosk_row() or {}).get("state", "unknown"))

            sampler = threading.Thread(target=sample, daemon=True)
            sampler.start()
            cmd_s: list[float] = []
            svc_s: list[float] = []
            failures: list[str] = []
            for _ in range(rounds):
                t0 = time.monotonic()
                cid = dep.controller.send_command(KIOSK, "collect_diagnostics", {}, "bench")
                if poll(lambda c=cid: (dep.controller.command(c) or {}).get("status") == "succeeded", 30):
                    cmd_s.append(time.monotonic() - t0)
                else:
                    failures.append(f"command {cid}: {(dep.controller.command(cid) or {}).get('status')}")
                t0 = time.monotonic()
                try:
                    svc.call("queue_ticket", "take", {"counter": "general"}, timeout=15)
                    svc_s.append(time.monotonic() - t0)
                except Exception as exc:  # noqa: BLE001 - a failed call is a result here
                    failures.append(f"service: {exc}")
            sampling.set()
            sampler.join(2)
            counts = dep.proxy.reset_counts()
            seconds = sum(cmd_s) + sum(svc_s)
            return {
                "shape": {"latency_s": shape.latency, "loss": shape.loss, "kbit_s": shape.bandwidth_bps / 1000},
                "seed": seed, "command_s": summary(cmd_s) if cmd_s else {}, "service_s": summary(svc_s) if svc_s else {},
                "failures": failures, "reconnects": counts.connections,
                "offline_samples": sum(1 for s in states if s != "online"), "samples": len(states),
                "bytes": counts.total, "seconds": round(seconds, 1),
            }
        finally:
            dep.stop()


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    p.add_argument("--latency", type=float, default=0.3, help="one-way latency, seconds (0.3)")
    p.add_argument("--loss", type=float, default=0.05, help="segment loss probability (0.05)")
    p.add_argument("--kbit", type=float, default=64, help="bandwidth each way, kbit/s (64)")
    p.add_argument("--rounds", type=int, default=40, help="command + service rounds (40)")
    p.add_argument("--seed", type=int, default=17, help="the loss model's random seed (17)")
    p.add_argument("--json", action="store_true")
    args = p.parse_args(argv)
    out = run(Shape(latency=args.latency, loss=args.loss, bandwidth_bps=args.kbit * 1000), args.rounds, args.seed)
    goals = {"command_p95_le_5s": bool(out["command_s"]) and out["command_s"]["p95"] <= 5.0,
             "service_p95_le_3s": bool(out["service_s"]) and out["service_s"]["p95"] <= 3.0,
             "stayed_online": out["offline_samples"] == 0 and out["reconnects"] == 0 and not out["failures"]}
    out["goals"] = goals
    print(json.dumps(out, indent=None if args.json else 2))
    return 0 if all(goals.values()) else 1


if __name__ == "__main__":
    sys.exit(main())
