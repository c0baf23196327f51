"""``kiosk-controller``: the fleet controller server."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from foundation.errors import KioskError
from foundation.lifecycle import (
    add_common_args,
    build_config,
    fail,
    start_service,
    stop_signals,
    wait_for_stop_signal,
)
from foundation.logs import setup_logging
from foundation.settings import ControllerConfig


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="kiosk-controller", description="Fleet controller for community kiosks: "
                                "registry, liveness, telemetry, alarms, config, commands and console.")
    add_common_args(p)
    p.add_argument("--http", default=None, help="console address HOST:PORT (default 127.0.0.1:8080)")
    p.add_argument("--fleet-dir", default=None,
                   help="fleet folder from 'kiosk-provision init-fleet': serve kiosk enrolment (POST /api/v1/enroll)")
    p.add_argument("--ca-passphrase-file", default=None,
                   help="file with the fleet CA key's passphrase, for enrolment (or systemd LoadCredential=ca-passphrase)")
    p.add_argument("--telemetry-period", type=float, default=None,
                   help="expected kiosk telemetry period in seconds (default 30)")
    p.add_argument("--alarm-rules", default=None,
                   help="alarm rules file in the format of controller/alarm_rules.toml (default: that file)")
    p.add_argument("--signing-key", type=Path, default=None,
                   help="Ed25519 private key (PEM) for signing commands (default: DATA_DIR/controller_ed25519.pem, "
                        "created on first start)")
    p.add_argument("--releases-url", default=None,
                   help="where kiosks download published releases, e.g. https://controller.example:8443/releases "
                        "(default: the console's address + /releases)")
    p.add_argument("--print-public-key", action="store_true",
                   help="print the public key to pin as controller_public_key in kiosk configs, then exit")
    return p


def enrolment_routes(config: ControllerConfig) -> tuple:
    """The enrolment endpoint's routes when ``fleet_dir`` is set; the CA key is decrypted once here."""
    if not config.fleet_dir:
        return ()
    import os

    from controller import enrolment_service
    from controller.enrolment_server import open_context
    from foundation.errors import ConfigError

    source = config.ca_passphrase_file
    if not source and os.environ.get("CREDENTIALS_DIRECTORY"):
        source = str(Path(os.environ["CREDENTIALS_DIRECTORY"]) / "ca-passphrase")
    if not source:
        raise ConfigError("enrolment needs the CA passphrase: give --ca-passphrase-file FILE",
                          field="ca_passphrase_file")
    try:
        passphrase = Path(source).read_bytes().rstrip(b"\r\n")
    except OSError as exc:
        raise ConfigError(f"cannot read {source}: {exc.strerror}", field="ca_passphrase_file") from None
    ctx = open_context(Path(config.fleet_dir), passphrase, controller_dir=config.data_dir, database=config.database)
    return tuple(enrolment_service.routes(lambda: ctx))


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    setup_logging(args.log_level)
    try:
        config = build_config(
            ControllerConfig, args,
            {"broker": args.broker, "data_dir": args.data_dir, "http": args.http,
             "telemetry_period": args.telemetry_period, "fleet_dir": args.fleet_dir,
             "ca_passphrase_file": args.ca_passphrase_file, "releases_url": args.releases_url,
             "alarm_rules": args.alarm_rules},
            {"broker": "mqtt://127.0.0.1:1883", "data_dir": "controller-data"},
        )
        if args.print_public_key:
            from contract import signing

            print(signing.public_key_text(signing.load_or_create_key(config.data_dir, args.signing_key)))
            return 0
        from controller.server import Controller
        from controller.web.serve import parse_http

        parse_http(config.http)  # a malformed --http fails at start, naming the field
        enrol_routes = enrolment_routes(config)  # a wrong passphrase fails at start, not at a kiosk's first enrol
        controller = Controller(config, signing_key=args.signing_key)
        from controller import rollout_job
        from controller.web import rollout_api, rollout_pages

        rollouts = rollout_job.for_controller(controller, base_url=config.releases_url)
        enrol_routes = (*enrol_routes, *rollout_api.routes(rollouts), *rollout_pages.routes(rollouts))
    except KioskError as exc:
        return fail(str(exc))
    code = start_service(controller)
    if code is not None:
        return code
    stop = stop_signals()  # a signal from here on stops in order, even while the console starts
    print(f"controller online broker={config.broker} data={config.data_dir}", flush=True)
    console = watch = None
    try:
        from controller.web import rollout_live
        from controller.web.serve import start_console

        console, url = start_console(controller, config, extra_routes=enrol_routes)
        print(f"console {url}", flush=True)
        rollouts.base_url = rollouts.base_url or f"{url.rstrip('/')}/releases"
        rollouts.store.set_setting("releases_url", rollouts.base_url)  # for kioskctl rollout create
        watch = rollout_live.attach(console.app.state.console, rollouts)  # live pages, /metrics
    except KioskError as exc:
        # The fleet must stay watched even when the web port is taken: keep the MQTT side running.
        print(f"error: console not started: {exc}; fix --http HOST:PORT and restart", file=sys.stderr, flush=True)
    rollouts.start()
    try:
        wait_for_stop_signal(stop)
    finally:
        rollouts.stop()
        if watch is not None:
            watch.stop()
        if console is not None:
            console.stop()
        controller.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
