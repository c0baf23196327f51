"""``python -m controller.service_backend --broker URL --data-dir DIR [--database URL]``: serve the
reference service backend."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from foundation.errors import KioskError
from foundation.lifecycle import stop_signals, wait_for_stop_signal
from foundation.logs import setup_logging
from foundation.settings import parse_broker_url


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m controller.service_backend", description=__doc__)
    p.add_argument("--broker", required=True, help="broker URL, mqtt://host:port")
    p.add_argument("--data-dir", type=Path, required=True, help="folder of the controller database")
    p.add_argument("--database", default="", help="the fleet database's postgresql:// URL (default: SQLite in --data-dir)")
    args = p.parse_args(argv)
    setup_logging()
    from controller.fleet_db import FleetDb
    from controller.service_backend.mqtt_host import ServiceHost

    try:
        host = ServiceHost(parse_broker_url(args.broker), FleetDb(args.data_dir, args.database))
        host.start(say=lambda m: print(m, file=sys.stderr, flush=True))
    except KioskError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    done = stop_signals()
    if not host.wait_listening(30):  # READY means requests are heard from now on
        print("error: the broker did not grant the kiosks' request topics within 30 s", file=sys.stderr)
        host.stop()
        return 2
    print("READY services", flush=True)
    wait_for_stop_signal(done)
    host.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
