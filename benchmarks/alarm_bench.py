"""Fault to alarm: how long from a printer fault to its one alarm stored by the controller.

A headless kiosk (``kiosk-agent --simulated``'s runtime, printer simulator on a pty), a real
Mosquitto and a real in-process controller. Each round sets the simulated printer's paper out,
waits until the controller's store holds exactly the ``paper_out`` alarm, puts paper back and
waits until it is cleared. Target (issue 12): stored within 2 s.

    .venv/bin/python benchmarks/alarm_bench.py [--rounds 10] [--json]
"""

from __future__ import annotations

import argparse
import json
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))


def main() -> None:
    p = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    p.add_argument("--rounds", type=int, default=10)
    p.add_argument("--json", action="store_true")
    args = p.parse_args()
    if shutil.which("mosquitto") is None:
        sys.exit("mosquitto is not installed")
    from controller.server import Controller
    from foundation.settings import ControllerConfig, KioskConfig, from_mapping
    from kiosk_ui.compose import build_headless_kiosk
    from tests.support.broker import Mosquitto
    from tests.support.waiting import wait_until

    tmp = Path(tempfile.mkdtemp())
    broker = Mosquitto(tmp / "broker").start()
    ctl = Controller(from_mapping(ControllerConfig, {"broker": broker.url, "data_dir": str(tmp / "controller")}))
    ctl.start()
    kiosk, runtime = build_headless_kiosk(from_mapping(KioskConfig, {
        "kiosk_id": "K-BENCH", "broker": broker.url, "data_dir": str(tmp / "kiosk"), "simulated": True}))
    runtime.start()
    try:
        def rules() -> list[str]:
            return [a["rule"] for a in ctl.alarms(kiosk_id="K-BENCH")["items"]]

        wait_until(lambda: "printer" in ((ctl.kiosk("K-BENCH") or {}).get("devices") or {}), 30, "printer status")
        raised, cleared = [], []
        for _ in range(args.rounds):
            t0 = time.monotonic()
            kiosk.sims["printer"].control({"cmd": "paper", "state": "out"})
            wait_until(lambda: rules() == ["paper_out"], 30, "alarm raised", interval=0.01)
            raised.append(time.monotonic() - t0)
            t0 = time.monotonic()
            kiosk.sims["printer"].control({"cmd": "paper", "state": "ok"})
            wait_until(lambda: rules() == [], 30, "alarm cleared", interval=0.01)
            cleared.append(time.monotonic() - t0)
        result = {"rounds": args.rounds, "raise_median_s": round(statistics.median(raised), 3),
                  "raise_max_s": round(max(raised), 3), "clear_median_s": round(statistics.median(cleared), 3),
                  "clear_max_s": round(max(cleared), 3)}
    finally:
        kiosk.close()
        ctl.stop()
        broker.stop()
    print(json.dumps(result) if args.json else
          f"paper out -> paper_out stored: median {result['raise_median_s']} s, max {result['raise_max_s']} s; "
          f"paper back -> cleared: median {result['clear_median_s']} s, max {result['clear_max_s']} s "
          f"({args.rounds} rounds; target 2 s)")


if __name__ == "__main__":
    main()
