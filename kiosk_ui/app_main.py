"""``kiosk``: the Kivy touch app for residents. Arguments are parsed before Kivy is imported."""

from __future__ import annotations

import argparse
import logging
import os
import sys
import threading
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # Kivy is imported only after the arguments are parsed
    from kiosk_ui.app import KioskApp
    from kiosk_ui.compose import Kiosk

log = logging.getLogger(__name__)
DEMO_PIN = "2468"  # simulated kiosks only (documented in docs/kiosk.md); real kiosks take a hash from config


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="kiosk", description="Community self-service kiosk touch app.")
    p.add_argument("--config", type=Path, help="kiosk TOML config file")
    p.add_argument("--kiosk-id", default=None, help="this kiosk's id (default from config, else 'demo')")
    p.add_argument("--broker", default=None, help="broker URL (mqtt://host:port or mqtts://host:port)")
    p.add_argument("--data-dir", type=Path, default=None, help="folder for this kiosk's state")
    p.add_argument("--simulated", action="store_true", help="simulate every device (demos and tests)")
    p.add_argument("--language", choices=("zh-CN", "zh-HK", "en"), default=None, help="start language")
    p.add_argument("--windowed", action="store_true", help="a window instead of full screen (development)")
    p.add_argument("--size", default="1280x800", help="window size WxH when windowed (default 1280x800)")
    p.add_argument("--screenshot", type=Path, help="save a screenshot of the first screen to this PNG and exit")
    p.add_argument("--no-voice", action="store_true", help="no spoken prompts")
    p.add_argument("--log-level", default=None, help="DEBUG, INFO (default), WARNING or ERROR")
    return p


def _load(args):
    """(config or None, kiosk id, data folder) from the arguments; raises ConfigError."""
    from foundation.settings import KioskConfig, load_toml

    config = None
    if args.config:
        # Flags override the file, for the agent's link as much as for the app (kiosk-agent does the same).
        config = load_toml(KioskConfig, args.config, {
            "kiosk_id": args.kiosk_id, "simulated": args.simulated or None, "broker": args.broker,
            "data_dir": str(args.data_dir) if args.data_dir else None, "language": args.language})
    kiosk_id = args.kiosk_id or (config.kiosk_id if config else "demo")
    return config, kiosk_id, args.data_dir or (config.data_dir if config else Path("kiosk-data") / kiosk_id)


def _resident_key(config, data_dir: Path) -> bytes:
    """The fleet's resident-reference key (from enrolment), or this kiosk's own when not enrolled."""
    from foundation.secure_files import resident_key_file

    if config is not None and config.resident_ref_key_file:
        return resident_key_file(config.resident_ref_key_file)
    if config is not None and not config.simulated:
        log.warning("no resident_ref_key_file in the config (enrol the kiosk): residents' references are "
                    "this kiosk's own, so volunteer hours and bookings do not follow them to other kiosks")
    return resident_key_file(data_dir / "resident-ref.key", create=True)


def make_kiosk(args, *, extra: dict | None = None, loaded: tuple | None = None) -> tuple[Kiosk, KioskApp]:
    """Build the kiosk (app, devices, fleet runtime) from parsed arguments through the composition
    root (also used by the UI test harness); ``loaded`` is what ``_load(args)`` already returned, so
    the config file is read once. The fleet link connects in the background."""
    from foundation.settings import KioskConfig
    from kiosk_ui.compose import build_app_kiosk
    from kiosk_ui.viewmodels.maintenance import hash_pin

    config, kiosk_id, data_dir = loaded or _load(args)
    data_dir.mkdir(parents=True, exist_ok=True)
    simulated = args.simulated or bool(config and config.simulated)
    broker_text = args.broker or (str(config.broker) if config else None)
    pin_hash = config.maintenance_pin_hash if config and config.maintenance_pin_hash else ""
    if not pin_hash and simulated:
        pin_hash = hash_pin(DEMO_PIN, iterations=1000)
    options = {"language": args.language or (config.language if config else "zh-CN"),
               "screenshot": args.screenshot, "pin_hash": pin_hash, "voice": not args.no_voice,
               "ref_key": _resident_key(config, data_dir),
               **({"critical_devices": config.critical_devices, "time_zone": config.time_zone,
                   "elderly_auto_age": config.elderly_auto_age} if config else {}),
               **(extra or {})}
    if config is None and broker_text and args.screenshot is None:
        # No config file but a broker: the kiosk still joins the fleet, with settings from the flags.
        from foundation.settings import from_mapping

        config = from_mapping(KioskConfig, {"kiosk_id": kiosk_id, "broker": broker_text,
                                            "data_dir": str(data_dir), "simulated": simulated})
    from kiosk_ui import update_hooks
    from kiosk_ui.agent.updates import CliSteps

    # The updater's hooks (docs/updates.md): health signals for a release on trial, the update lock,
    # and, when this kiosk runs from a release folder, the kiosk-updater it updates itself through.
    health, update_locks = update_hooks.from_environment()
    updater = None
    if config is not None and health.version:
        tls = ("--ca", config.ca_file, "--cert", config.cert_file, "--key", config.key_file) if config.ca_file else ()
        updater = CliSteps(tls=tls)
    kiosk, app = build_app_kiosk(config=config, kiosk_id=kiosk_id, data_dir=data_dir, simulated=simulated,
                                 app_options={**options, "health": health, "update_locks": update_locks},
                                 join_fleet=True, update_locks=update_locks,
                                 agent_options={"health": health, "updater": updater})
    if kiosk.runtime is not None:
        _start_fleet_link(kiosk.runtime)
        _restart_on_request(kiosk.runtime, app)
    return kiosk, app


def _start_fleet_link(runtime) -> None:
    """The fleet link runs in-process and connects in the background: the app works without it."""
    from foundation.errors import KioskError

    def run():
        try:
            runtime.start()
        except KioskError as exc:
            log.error("fleet link not started: %s", exc)
    threading.Thread(target=run, daemon=True).start()


def _restart_on_request(runtime, app) -> None:
    """A fleet restart_app (or a simulated reboot) asks the runtime to restart: leave the Kivy loop
    with kiosk-agent's "restart me" exit code, so systemd (Restart=always) or the demo starts us again."""
    from kivy.clock import Clock

    from kiosk_ui.agent.cli import RESTART_EXIT_CODE

    def check(_dt):
        if not runtime.restart_requested.is_set():
            return True
        log.warning("restarting: %s", runtime.restart_reason)
        app.stop_with(RESTART_EXIT_CODE)
        return False
    Clock.schedule_interval(check, 0.5)


def _stop_on_sigterm(app) -> None:
    """systemd stops the kiosk with SIGTERM: leave the Kivy loop cleanly (the fleet link then says
    ``shutdown`` and the simulators stop) instead of being killed when TimeoutStopSec runs out."""
    import signal

    from kivy.clock import Clock

    def on_term(_signum, _frame):
        Clock.schedule_once(lambda _dt: app.stop())

    signal.signal(signal.SIGTERM, on_term)


def main(argv: list[str] | None = None) -> int:
    if argv is None:  # started as a command (not called from Python): the privacy allocator first
        from kiosk_ui import private_memory

        private_memory.ensure()
    args = build_parser().parse_args(argv)
    os.environ.setdefault("KIVY_NO_ARGS", "1")
    os.environ.setdefault("KIVY_NO_CONSOLELOG", "1")
    os.environ.setdefault("KIVY_LOG_MODE", "PYTHON")
    from foundation.errors import KioskError

    try:
        loaded = _load(args)  # a bad config file stops here, before anything is written
        data_dir = loaded[2]
        data_dir.mkdir(parents=True, exist_ok=True)
    except (KioskError, OSError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    os.environ.setdefault("KIVY_HOME", str(data_dir / ".kivy"))
    if not os.environ.get("DISPLAY") and not os.environ.get("WAYLAND_DISPLAY") and sys.platform == "linux":
        print("error: no display: run on the kiosk's screen, or under xvfb-run for tests", file=sys.stderr)
        return 2
    from foundation.logs import setup_logging

    setup_logging(args.log_level)
    from kiosk_ui.app import configure_window

    configure_window(args.windowed or args.screenshot is not None, args.size)
    try:
        kiosk, app = make_kiosk(args, loaded=loaded)
    except KioskError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    try:
        _stop_on_sigterm(app)
        app.run()
    except KioskError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    finally:
        kiosk.close()  # the fleet link says ``shutdown``, drivers close, simulators stop
    return app.exit_code


if __name__ == "__main__":
    sys.exit(main())
