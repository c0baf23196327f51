"""``kiosk-controller``: the fleet controller server."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

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
    p.add_argument("--signing-key", type=Path, default=None,
                   help="Ed25519 private key (PEM) for signing commands (default: DATA_DIR/controller_ed25519.pem, "
                        "created on first start)")
    p.add_argument("--print-public-key", action="store_true",
                   help="print the public key to pin as controller_public_key in kiosk configs, then exit")
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
        if args.print_public_key:
            from controller import signing

            print(signing.public_key_text(signing.load_or_create_key(config.data_dir, args.signing_key)))
            return 0
        from controller.server import Controller
        from controller.web.serve import parse_http

        parse_http(config.http)  # a malformed --http fails at start, naming the field
        controller = Controller(config, signing_key=args.signing_key)
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
    console = None
    try:
        from controller.web.serve import start_console

        console, url = start_console(controller, config)
        print(f"console {url}", flush=True)
    except KioskError as exc:
        # The fleet must stay watched even when the web port is taken: keep the MQTT side running.
        print(f"error: console not started: {exc}; fix --http HOST:PORT and restart", file=sys.stderr, flush=True)
    try:
        wait_for_stop_signal()
    finally:
        if console is not None:
            console.stop()
        controller.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
