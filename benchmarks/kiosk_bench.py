"""Kiosk app benchmark: ``python benchmarks/kiosk_bench.py`` (under xvfb-run when there is no display).

Measures, with every device simulated:
- cold start: process start to the attract screen shown (median of N runs);
- memory: resident set size after the 1st and the 100th complete session (queue ticket, printed, rated);
- ID card placed (simulator default latency) to the masked name on screen (median and max of N);
- frame times while navigating between screens (95th percentile).
Prints one JSON object; the figures go into docs/benchmarks.md.

KB_PROFILE="-m cProfile -o FILE" runs the app process under that profiler (how the frame time was found to
be spent in the buffer swap, that is in the software renderer).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

PROFILE = os.environ.get("KB_PROFILE", "").split()
REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))  # run as a script from anywhere: the project and its test support


def run(steps: list, workdir: Path, timeout: float = 600, broker: str = "") -> tuple[float, list[str]]:
    """Run the harness; returns (seconds until the first step passed, stdout lines)."""
    script = workdir / "script.json"
    script.write_text(json.dumps(steps, ensure_ascii=False), encoding="utf-8")
    env = dict(os.environ, PYTHONPATH=str(REPO), PYTHONUNBUFFERED="1")
    t0 = time.monotonic()
    proc = subprocess.Popen([sys.executable, *PROFILE, "-m", "tests.kiosk.harness", "--script", str(script), "--data-dir",
                             str(workdir / "kiosk"), "--simulated", "--artifacts", str(workdir / "art"),
                             *(["--broker", broker] if broker else [])],
                            stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, stdin=subprocess.PIPE, text=True,
                            cwd=REPO, env=env)
    if proc.stdout is None:
        proc.kill()
        raise RuntimeError("the kiosk harness process has no stdout pipe")
    lines, first = [], None
    deadline = t0 + timeout
    for line in proc.stdout:
        lines.append(line.strip())
        if first is None and line.startswith("STEP 0"):
            first = time.monotonic() - t0
        if time.monotonic() > deadline:
            proc.kill()
            break
    proc.wait(30)
    if not lines or not lines[-1].startswith("DONE"):
        raise SystemExit(f"harness failed: {lines[-3:]}")
    return first or 0.0, lines


def session() -> list:
    return [["press", "start"], ["press", "service:queue_ticket"], ["press", "option:general"],
            ["screen", "result"], ["press", "print"], ["text", "打印完成"], ["screen", "result"], ["press", "finish"],
            ["press", "star:5"], ["press", "submit_rating"], ["press", "home"], ["screen", "attract"], ["wiped"]]


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--starts", type=int, default=5)
    p.add_argument("--sessions", type=int, default=100)
    p.add_argument("--cards", type=int, default=10)
    args = p.parse_args()
    out: dict = {}
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        starts = []
        for i in range(args.starts):
            d = tmp / f"start{i}"
            d.mkdir()
            first, _ = run([["screen", "attract"]], d)
            starts.append(first)
        out["cold_start_s"] = {"median": round(statistics.median(starts), 3), "all": [round(s, 3) for s in starts]}

        steps = [["screen", "attract"], *session(), ["rss", "after_1"]]
        for _ in range(args.sessions - 1):
            steps += session()
        steps += [["rss", f"after_{args.sessions}"]]
        # ID card to masked name, then frame times while moving between screens.
        for _ in range(args.cards):
            steps += [["press", "start"], ["press", "service:volunteer"], ["screen", "identify"], ["mark"],
                      ["sim", "id_reader", {"cmd": "place_card", "profile": "resident-1"}], ["text", "测****"],
                      ["elapsed", "card"], ["sim", "id_reader", {"cmd": "remove_card"}], ["press", "back"],
                      ["press", "home"], ["screen", "attract"]]
        steps += [["frames", "on"]]
        for _ in range(10):
            steps += [["press", "start"], ["press", "service:notices"], ["press", "back"], ["screen", "menu"],
                      ["press", "service:feedback"], ["press", "back"], ["press", "home"], ["screen", "attract"]]
        steps += [["frames", "off"]]
        d = tmp / "sessions"
        d.mkdir()
        # The sessions run against a real broker and controller (the service backend answers).
        from controller.server import Controller
        from foundation.settings import ControllerConfig, from_mapping
        from tests.support.broker import Mosquitto

        broker = Mosquitto(tmp / "broker").start()
        controller = Controller(from_mapping(ControllerConfig, {"broker": broker.url, "data_dir": str(tmp / "ctl")}))
        controller.start()
        try:
            t0 = time.monotonic()
            _, lines = run(steps, d, timeout=1800, broker=broker.url)
        finally:
            controller.stop()
            broker.stop()
        out["sessions_run_s"] = round(time.monotonic() - t0, 1)
        rss = {ln.split()[1]: int(ln.split()[2]) for ln in lines if ln.startswith("RSS")}
        first, last = rss["after_1"], rss[f"after_{args.sessions}"]
        out["rss_kb"] = {"after_1": first, f"after_{args.sessions}": last, "growth": last - first}
        # The sim's card read plus the harness's 50 ms polling of the screen: an upper bound.
        cards = [float(ln.split()[2]) for ln in lines if ln.startswith("ELAPSED card")]
        out["card_to_masked_name_s"] = {"median": round(statistics.median(cards), 3), "max": round(max(cards), 3)}
        frames = json.loads(next(ln for ln in lines if ln.startswith("FRAMES")).split(" ", 1)[1])
        frames = sorted(f for f in frames if f > 0)
        out["frame_ms"] = {"p95": round(frames[int(len(frames) * 0.95) - 1] * 1000, 1),
                           "median": round(statistics.median(frames) * 1000, 1), "count": len(frames)}
    print(json.dumps(out, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
