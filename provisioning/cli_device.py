"""``kiosk-provision`` subcommands that talk to the kiosk's hardware: flash-firmware, self-test."""

from __future__ import annotations

import json
import sys
import tempfile
from pathlib import Path

from provisioning.cli import _say


def cmd_flash(args) -> int:
    from device_drivers import supervisor_flash as flash
    from foundation.settings import KioskConfig, load_toml

    hello_port = args.hello_port
    if not hello_port and args.config and args.config.exists():
        hello_port = load_toml(KioskConfig, args.config).devices.supervisor
    with tempfile.TemporaryDirectory() as tmp:
        bundle = args.bundle
        if bundle is None:
            _say("building the firmware bundle")
            flash.build_bundle(Path(tmp) / "bundle")
            bundle = Path(tmp) / "bundle"
        via = args.via
        if via == "auto":
            via = "link" if flash.link_supported(args.port) else "mpremote"
            _say(f"flashing via {via}" + (" (the firmware on the board answers with file transfer)"
                                          if via == "link" else " (no firmware with file transfer answers)"))
        if via == "link":
            # The board restarts on the same port; --hello-port only when the link is elsewhere.
            report = flash.flash_over_link(args.port, bundle, hello=flash.supervisor_hello(hello_port or args.port),
                                           progress=_say)
        else:
            report = flash.flash(args.port, bundle,
                                 hello=flash.supervisor_hello(hello_port) if hello_port else None,
                                 progress=_say,
                                 service_mode=flash.supervisor_service_mode(hello_port or args.port))
    print(f"firmware {report.version} on {args.port} via {report.via}: {len(report.copied)} files copied, "
          f"{len(report.skipped)} already up to date"
          + (f"; hello from board {report.hello.get('board_id', '?')}" if report.hello else
             "; hello not checked (no supervisor port: give --hello-port or --config)"))
    return 0


def cmd_self_test(args) -> int:
    from foundation.errors import KioskError
    from foundation.settings import KioskConfig, load_toml
    from provisioning import selftest

    cfg = load_toml(KioskConfig, args.config)
    report = selftest.run_self_test(cfg, progress=_say)
    if args.json:
        print(json.dumps(report.to_dict(), ensure_ascii=False, indent=2))
    else:
        for c in report.checks:
            line = f"{c.name:<12} {c.status.upper():<8} {c.detail}"
            print(line + (f"\n{'':<22}check: {c.hint}" if c.hint else ""))
        print("\n".join(selftest.receipt_lines(report)))
        print(selftest.terminal_qr(selftest.receipt_qr_data(report)))
    if not args.no_report:
        try:
            selftest.report_to_controller(cfg, report)
            print(f"reported to the controller via {cfg.broker}", file=sys.stderr)
        except KioskError as exc:
            print(f"warning: result not reported to the controller ({exc}); check the network and "
                  "the kiosk certificate, then run self-test again", file=sys.stderr)
            return 1
    return 0 if report.passed else 1


def register(sub) -> None:
    s = sub.add_parser("flash-firmware", help="build the supervisor firmware and install it (over its link or mpremote)")
    s.add_argument("--port", required=True,
                   help="the board's USB port (a serial URL), e.g. /dev/serial/by-id/usb-MicroPython_...")
    s.add_argument("--via", choices=("auto", "link", "mpremote"), default="auto",
                   help="link: the firmware's own file transfer (running firmware, or the simulator); "
                        "mpremote: the REPL (a new board, old firmware); auto (default): link when the "
                        "firmware on --port answers with file transfer, else mpremote")
    s.add_argument("--bundle", type=Path, help="an already built bundle folder (default: build one now)")
    s.add_argument("--hello-port", help="supervisor link port for the hello check (default: from --config)")
    s.add_argument("--config", type=Path, default=Path("/etc/kiosk/kiosk.toml"))
    s.set_defaults(func=cmd_flash)

    s = sub.add_parser("self-test", help="check every configured device, print a receipt, report to the controller")
    s.add_argument("--config", type=Path, default=Path("/etc/kiosk/kiosk.toml"))
    s.add_argument("--json", action="store_true", help="machine-readable result")
    s.add_argument("--no-report", action="store_true", help="do not send the result to the controller")
    s.set_defaults(func=cmd_self_test)


__all__ = ["register"]
