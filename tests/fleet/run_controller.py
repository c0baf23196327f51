"""Run a Controller in its own process for tests that kill it (``python -m tests.fleet.run_controller``)."""

from __future__ import annotations

import argparse
import signal
import threading
from pathlib import Path

from controller.server import Controller
from foundation.logs import setup_logging
from foundation.settings import ControllerConfig, from_mapping


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--broker", required=True)
    p.add_argument("--data-dir", required=True)
    p.add_argument("--telemetry-period", type=float, default=30.0)
    p.add_argument("--stale-after-periods", type=int, default=3)
    p.add_argument("--database", default="", help="postgresql:// URL (default: SQLite in --data-dir)")
    p.add_argument("--instance", default="", help="one of several controllers (needs --database)")
    p.add_argument("--signing-key", default=None, help="the fleet's command-signing key (shared by instances)")
    p.add_argument("--alarm-rules", default="", help="alarm rules file (default: the packaged one)")
    args = p.parse_args()
    setup_logging("WARNING")
    c = Controller(from_mapping(ControllerConfig, {"broker": args.broker, "data_dir": args.data_dir,
                                                   "client_id": f"ctl-{Path(args.data_dir).name}",
                                                   "telemetry_period": args.telemetry_period, "keepalive": 5,
                                                   "stale_after_periods": args.stale_after_periods,
                                                   "database": args.database, "instance": args.instance,
                                                   "alarm_rules": args.alarm_rules}),
                   signing_key=args.signing_key)
    c.start()
    print("controller online", flush=True)
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    stop.wait()
    c.stop()


if __name__ == "__main__":
    main()
