"""``kiosk-updater``: the kiosk's update commands (run as root from the committed release).

    kiosk-updater trust release-keys.json            verify and save a new release key list
    kiosk-updater install https://controller/releases/kiosk-1.4.0   (or a bundle folder)
    kiosk-updater activate 1.4.0                     the first release of a new kiosk (provisioning)
    kiosk-updater switch 1.4.0                       switch, restart the kiosk, run the health window
    kiosk-updater watch                              resume the health window of a pending trial
    kiosk-updater abort 1.4.0                        roll the release on trial back now
    kiosk-updater boot                               recovery + trial boot count (kiosk.service ExecStartPre)
    kiosk-updater firmware BUNDLE-or-URL --port /dev/serial/by-id/...   staged supervisor update
    kiosk-updater status [--json]

Exit status: 0 done, 1 refused or failed (one line says why), 3 deferred (an activity holds the
update lock; the line names it), 4 rolled back.
"""

from __future__ import annotations

import argparse
import json
import logging
import ssl
import subprocess
import sys
import time
from pathlib import Path

from contract import release as R
from foundation.errors import KioskError
from foundation.logs import setup_logging
from kiosk_ui.updater.fetch import Fetcher, RateLimiter, from_folder
from kiosk_ui.updater.health import HealthPolicy
from kiosk_ui.updater.install import Installer, check_pin
from kiosk_ui.updater.state import Layout, UpdateError
from kiosk_ui.updater.switch import Outcome, Switcher
from kiosk_ui.updater.watch import SystemdObserver, watch

EXIT = {"deferred": 3, "rolled_back": 4}
log = logging.getLogger("kiosk_ui.updater")


def _context(args) -> ssl.SSLContext | None:
    if not args.ca:
        return None
    ctx = ssl.create_default_context(cafile=args.ca)
    if args.cert:
        ctx.load_cert_chain(args.cert, args.key)  # the kiosk's own certificate: mutual TLS
    return ctx


def _parts(args) -> tuple[Layout, Installer, Switcher]:
    lay = Layout(Path(args.root))
    policy = HealthPolicy(window_s=args.window, signal_deadline_s=args.deadline)
    try:
        root_key = R.parse_key(Path(args.root_pub).read_text(encoding="ascii"), what=args.root_pub)
    except OSError as exc:
        raise UpdateError("no_root_key", f"cannot read the release root key {args.root_pub}: {exc}") from None
    return lay, Installer(lay, root_key=root_key, clock=time.time), Switcher(lay, clock=time.time, policy=policy)


def _print(out: Outcome, as_json: bool = True) -> int:
    print(json.dumps({"status": out.status, "version": out.version, "reason": out.reason}))
    return EXIT.get(out.status, 0)


def cmd_trust(args) -> int:
    _, inst, _ = _parts(args)
    keys = inst.accept_key_list(Path(args.key_list).read_bytes())
    print(json.dumps({"key_list_serial": keys.serial, "keys": sorted(keys.keys)}))
    return 0


def cmd_install(args) -> int:
    lay, inst, sw = _parts(args)
    src = args.source
    if src.startswith(("https://", "http://")):
        limiter = RateLimiter(args.rate, clock=time.monotonic, sleep=time.sleep) if args.rate else None
        fetcher = Fetcher(src, lay.objects, context=_context(args), limiter=limiter, sleep=time.sleep)
        raw = fetcher.manifest()
        if args.manifest_sha256:
            check_pin(raw, args.manifest_sha256)
        man = inst.check(raw, sw.current())
        inst.install(man, fetcher.ensure)
        extra = {"downloaded": fetcher.report.downloaded, "reused": fetcher.report.reused}
    else:
        try:
            raw = (Path(src) / R.MANIFEST_FILE).read_bytes()
        except OSError:
            raise R.ReleaseRejected("bad_manifest", f"{src} is not a bundle (no {R.MANIFEST_FILE})") from None
        man = inst.check(raw, sw.current())
        inst.install(man, from_folder(Path(src), lay.objects))
        extra = {}
    print(json.dumps({"installed": man.version, **extra}))
    return 0


def _restart(args) -> None:
    subprocess.run(["systemctl", "restart", args.unit], check=False, timeout=120)


def _watch(args, sw: Switcher) -> Outcome:
    observer = SystemdObserver(args.unit, Path(args.health_dir))
    return watch(sw, observer, restart=lambda: _restart(args), wait=time.sleep, interval=2.0)


def cmd_switch(args) -> int:
    _, _, sw = _parts(args)
    out = sw.switch(args.version)
    if out.status != "switched":
        return _print(out)
    _restart(args)
    return _print(_watch(args, sw))


def cmd_watch(args) -> int:
    _, _, sw = _parts(args)
    return _print(_watch(args, sw))


def cmd_abort(args) -> int:
    """Roll the release on trial back at once (an operator aborted its roll-out)."""
    _, _, sw = _parts(args)
    trial = sw.state().trial
    if trial is None or trial.version != args.version:
        print(f"kiosk-updater abort: release {args.version} is not on trial", file=sys.stderr)
        return 1
    out = sw.rollback("aborted: the roll-out was aborted by an operator")
    _restart(args)
    return _print(out)


def cmd_firmware(args) -> int:
    """A staged supervisor firmware update from a signed bundle (folder or URL)."""
    from contract.release import ReleaseRejected
    from device_drivers.supervisor import SupervisorDriver
    from device_drivers.supervisor_flash import stage_over_link

    lay, inst, _ = _parts(args)
    inst.component = "supervisor"
    objects = lay.root / "firmware-objects"
    if args.source.startswith(("https://", "http://")):
        fetcher = Fetcher(args.source, objects, context=_context(args), sleep=time.sleep)
        raw, ensure = fetcher.manifest(), fetcher.ensure
    else:
        try:
            raw = (Path(args.source) / R.MANIFEST_FILE).read_bytes()
        except OSError:
            raise ReleaseRejected("bad_manifest", f"{args.source} is not a bundle (no {R.MANIFEST_FILE})") from None
        ensure = from_folder(Path(args.source), objects)
    with SupervisorDriver(args.port) as drv:
        board = drv.hello()
        man = inst.check(raw, board.firmware)  # newer than what the board runs, signed, not expired
        for entry in man.files:
            ensure(entry)
        drv.start_heartbeat()  # the board keeps supervising this Pi during the update
        report = stage_over_link(drv, lay.root, man, objects=objects)
    print(json.dumps({"firmware": man.version, "from": board.firmware, "sent": len(report.copied),
                      "already_staged": len(report.skipped)}))
    return 0


def cmd_activate(args) -> int:
    _, _, sw = _parts(args)
    sw.activate_first(args.version)
    return _print(Outcome("committed", args.version, "first release of this kiosk"))


def cmd_boot(args) -> int:
    _, _, sw = _parts(args)
    return _print(sw.boot())


def cmd_status(args) -> int:
    lay, _, sw = _parts(args)
    st = sw.state()
    installed = sorted(d.name for d in lay.releases.iterdir() if lay.installed(d.name)) if lay.releases.is_dir() else []
    print(json.dumps({"current": sw.current(), "committed": sw.committed(), "installed": installed,
                      "trial": st.trial.__dict__ if st.trial else None, "bad": list(st.bad),
                      "last_result": st.last_result,
                      "key_list_serial": (st.key_list or {}).get("serial")}, indent=None if args.json else 1))
    return 0


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="kiosk-updater", description=(__doc__ or "").split("\n")[0])  # no docstring under python -OO
    p.add_argument("--root", default="/opt/kiosk", help="the folder holding releases/, current, committed")
    p.add_argument("--root-pub", default="/etc/kiosk/release-root.pub", help="the pinned release root key")
    p.add_argument("--unit", default="kiosk.service")
    p.add_argument("--log-level", default="INFO")
    p.add_argument("--health-dir", default="/run/kiosk/health")
    p.add_argument("--window", type=float, default=300.0, help="health window in seconds")
    p.add_argument("--deadline", type=float, default=60.0, help="seconds to reach ready/broker/devices")
    sub = p.add_subparsers(dest="command", required=True)
    s = sub.add_parser("trust")
    s.add_argument("key_list")
    s.set_defaults(func=cmd_trust)
    s = sub.add_parser("install")
    s.add_argument("source", help="bundle URL (https://...) or folder")
    s.add_argument("--rate", type=float, default=None, help="download limit in bytes per second")
    s.add_argument("--manifest-sha256", default="", help="refuse a release.json with another SHA-256 (cmd/update)")
    s.add_argument("--ca")
    s.add_argument("--cert")
    s.add_argument("--key")
    s.set_defaults(func=cmd_install)
    s = sub.add_parser("firmware", help="staged update of the supervisor board from a signed bundle")
    s.add_argument("source", help="bundle URL (https://...) or folder")
    s.add_argument("--port", required=True, help="the supervisor's serial port (/dev/serial/by-id/...)")
    s.add_argument("--ca")
    s.add_argument("--cert")
    s.add_argument("--key")
    s.set_defaults(func=cmd_firmware)
    s = sub.add_parser("activate", help="make the first installed release current and committed")
    s.add_argument("version")
    s.set_defaults(func=cmd_activate)
    s = sub.add_parser("switch")
    s.add_argument("version")
    s.set_defaults(func=cmd_switch)
    s = sub.add_parser("abort", help="roll the release on trial back now (its roll-out was aborted)")
    s.add_argument("version")
    s.set_defaults(func=cmd_abort)
    for name, func in (("watch", cmd_watch), ("boot", cmd_boot)):
        sub.add_parser(name).set_defaults(func=func)
    s = sub.add_parser("status")
    s.add_argument("--json", action="store_true")
    s.set_defaults(func=cmd_status)
    return p


def main(argv: list[str] | None = None) -> int:
    args = parser().parse_args(argv)
    setup_logging(args.log_level)  # to stderr, i.e. the journal: roll-backs and their reasons land there
    try:
        return args.func(args)
    except KioskError as exc:
        log.error("refused", extra={"fields": {"command": args.command, "reason": getattr(exc, "reason", "")}})
        print(f"kiosk-updater {args.command}: {exc}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
