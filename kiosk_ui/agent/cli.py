"""``kiosk-agent``: the headless kiosk runtime (simulated kiosks in the demo fleet use it)."""

from __future__ import annotations

import argparse
import sys

from foundation.errors import KioskError
from foundation.lifecycle import (
    add_common_args,
    build_config,
    fail,
    start_service,
    stop_signals,
)
from foundation.logs import setup_logging
from foundation.settings import KioskConfig

RESTART_EXIT_CODE = 75  # "restart me": a fleet restart_app/reboot command on a simulated kiosk


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="kiosk-agent", description="Headless kiosk runtime: links one kiosk and "
                                "its devices to the fleet controller over MQTT.")
    add_common_args(p)
    p.add_argument("--kiosk-id", default=None, help="this kiosk's id (letters, digits, - and _)")
    p.add_argument("--site", default=None, help="the community site this kiosk serves")
    p.add_argument("--simulated", action="store_true", help="start simulated devices (hardware_sim)")
    p.add_argument("--telemetry-interval", type=float, default=None, help="seconds between telemetry (30)")
    p.add_argument("--keepalive", type=int, default=None, help="MQTT keepalive in seconds (10)")
    p.add_argument("--controller-public-key", default=None,
                   help="the controller's Ed25519 public key (base64); commands signed by it are accepted")
    return p


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    setup_logging(args.log_level)
    try:
        config = build_config(
            KioskConfig, args,
            {"kiosk_id": args.kiosk_id, "broker": args.broker, "data_dir": args.data_dir, "site": args.site,
             "simulated": args.simulated or None, "telemetry_interval": args.telemetry_interval,
             "keepalive": args.keepalive, "controller_public_key": args.controller_public_key},
            {"broker": "mqtt://127.0.0.1:1883", "data_dir": f"kiosk-data/{args.kiosk_id or 'kiosk'}"},
        )
    except KioskError as exc:
        return fail(str(exc))
    from kiosk_ui.compose import build_headless_kiosk

    extra = {}
    if config.simulated:
        # Test-only: a simulated kiosk's wall clock can be stepped (kiosk_ui/agent/stepped_clock.py).
        from kiosk_ui.agent.stepped_clock import OFFSET_FILE, SteppedClock

        extra["clock"] = SteppedClock(config.data_dir / "dev" / OFFSET_FILE)
    try:
        kiosk, runtime = build_headless_kiosk(config, **extra)
    except KioskError as exc:
        return fail(str(exc))
    code = start_service(runtime)
    if code is not None:
        kiosk.close()
        return code
    stop = stop_signals()
    announced = False
    try:
        while not stop.wait(0.1):
            if not announced and runtime.agent.connected:
                print(f"kiosk {config.kiosk_id} online broker={config.broker} boot_id={runtime.agent.boot_id}",
                      flush=True)
                announced = True
            if runtime.restart_requested.is_set():
                print(f"restarting: {runtime.restart_reason}", flush=True)
                # systemd (Restart=always) starts us again; the exit code tells it this was asked for.
                return RESTART_EXIT_CODE
    finally:
        kiosk.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
