"""``kiosk-controller``: the fleet controller server."""

from __future__ import annotations

import argparse
import sys

from provisioning.errors import KioskError
from provisioning.lifecycle import (
    StopRequested,
    add_common_args,
    build_config,
    fail,
    raise_on_stop_signal,
    wait_for_stop_signal,
)
from provisioning.logs import setup_logging
from provisioning.settings import ControllerConfig


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="kiosk-controller", description="Fleet controller for community kiosks: "
                                "registry, liveness, telemetry, alarms, config, commands and console.")
    add_common_args(p)
    p.add_argument("--http", default=None, help="console address HOST:PORT (default 127.0.0.1:8080)")
    p.add_argument("--telemetry-period", type=float, default=None,
                   help="expected kiosk telemetry period in seconds (default 30)")
    return p


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    setup_logging(args.log_level)
    try:
        config = build_config(
            ControllerConfig, args,
            {"broker": args.broker, "data_dir": args.data_dir, "http": args.http,
             "telemetry_period": args.telemetry_period},
            {"broker": "mqtt://127.0.0.1:1883", "data_dir": "controller-data"},
        )
        from controller.server import Controller

        controller = Controller(config)
    except KioskError as exc:
        return fail(str(exc))
    raise_on_stop_signal()
    try:
        controller.start(say=lambda m: print(m, file=sys.stderr, flush=True))
    except StopRequested:
        controller.stop()
        return 0
    except KioskError as exc:
        controller.stop()
        return fail(str(exc))
    print(f"controller online broker={config.broker} data={config.data_dir}", flush=True)
    try:
        wait_for_stop_signal()
    finally:
        controller.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
