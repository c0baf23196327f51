"""``kiosk``: the Kivy touch app for residents. Arguments are parsed before Kivy is imported."""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="kiosk", description="Community self-service kiosk touch app.")
    p.add_argument("--config", type=Path, help="kiosk TOML config file")
    p.add_argument("--kiosk-id", default=None, help="this kiosk's id (default from config, else 'demo')")
    p.add_argument("--broker", default=None, help="broker URL (mqtt://host:port)")
    p.add_argument("--data-dir", type=Path, default=None, help="folder for this kiosk's state")
    p.add_argument("--simulated", action="store_true", help="simulate every device (demos and tests)")
    p.add_argument("--language", choices=("zh-CN", "zh-HK", "en"), default=None, help="start language")
    p.add_argument("--windowed", action="store_true", help="a window instead of full screen (development)")
    p.add_argument("--size", default="1280x800", help="window size WxH when windowed (default 1280x800)")
    p.add_argument("--screenshot", type=Path, help="save a screenshot of the first screen to this PNG and exit")
    p.add_argument("--log-level", default=None, help="DEBUG, INFO (default), WARNING or ERROR")
    return p


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    os.environ.setdefault("KIVY_NO_ARGS", "1")
    os.environ.setdefault("KIVY_NO_CONSOLELOG", "1")
    os.environ.setdefault("KIVY_LOG_MODE", "PYTHON")
    data_dir = args.data_dir or Path("kiosk-data") / (args.kiosk_id or "demo")
    data_dir.mkdir(parents=True, exist_ok=True)
    os.environ.setdefault("KIVY_HOME", str(data_dir / ".kivy"))
    if not os.environ.get("DISPLAY") and not os.environ.get("WAYLAND_DISPLAY") and sys.platform == "linux":
        print("error: no display: run on the kiosk's screen, or under xvfb-run for tests", file=sys.stderr)
        return 2
    from provisioning.errors import KioskError
    from provisioning.logs import setup_logging

    setup_logging(args.log_level)
    try:
        from kiosk_ui.app import configure_window

        configure_window(args.windowed or args.screenshot is not None, args.size)
        from kiosk_ui.app import KioskApp

        app = KioskApp(
            kiosk_id=args.kiosk_id or "demo",
            language=args.language or "zh-CN",
            windowed=args.windowed or args.screenshot is not None,
            size=args.size,
            screenshot=args.screenshot,
        )
        app.run()
    except KioskError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    return app.exit_code


if __name__ == "__main__":
    sys.exit(main())
