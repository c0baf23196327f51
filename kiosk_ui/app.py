"""The Kivy application: window set-up, CJK font for every widget, screen manager."""

from __future__ import annotations

import logging
from pathlib import Path

from kiosk_ui.fonts import find_cjk_font

log = logging.getLogger(__name__)


def configure_window(windowed: bool, size: str) -> None:
    """Must run before the Kivy window is created."""
    from kivy.config import Config

    w, _, h = size.partition("x")
    Config.set("graphics", "width", w or "1280")
    Config.set("graphics", "height", h or "800")
    Config.set("graphics", "fullscreen", "0" if windowed else "auto")
    Config.set("graphics", "borderless", "0" if windowed else "1")
    Config.set("input", "mouse", "mouse,disable_multitouch")
    # Residents must not be able to leave the app: Escape does not close it.
    Config.set("kivy", "exit_on_escape", "0")


def _make_app_class():
    from kivy.app import App
    from kivy.clock import Clock
    from kivy.core.text import LabelBase
    from kivy.core.window import Window
    from kivy.uix.screenmanager import ScreenManager

    class KioskApp(App):
        def __init__(self, *, kiosk_id: str, language: str, windowed: bool, size: str,
                     screenshot: Path | None = None, **kwargs):
            super().__init__(**kwargs)
            self.kiosk_id = kiosk_id
            self.language = language
            self.screenshot_path = screenshot
            self.exit_code = 0
            self.title = "Community Kiosk"

        def build(self):
            font = find_cjk_font()
            # Registering under Kivy's default name makes every widget use the CJK font.
            LabelBase.register(name="Roboto", fn_regular=font, fn_bold=font)
            from kiosk_ui.screens.home import HomeScreen
            from kiosk_ui.viewmodels.home import HomeViewModel

            sm = ScreenManager()
            home = HomeScreen(name="home")
            home.vm = HomeViewModel(kiosk_id=self.kiosk_id, language=self.language)
            sm.add_widget(home)
            if self.screenshot_path is not None:
                Clock.schedule_once(self._take_screenshot, 1.0)
            return sm

        def _take_screenshot(self, _dt) -> None:
            path = Path(self.screenshot_path)
            path.parent.mkdir(parents=True, exist_ok=True)
            Window.screenshot(name=str(path.with_suffix("")) + "%(counter)s.png")
            # Window.screenshot appends a counter; move the file to the exact path asked for.
            made = sorted(path.parent.glob(path.stem + "*.png"), key=lambda p: p.stat().st_mtime)
            if made:
                made[-1].replace(path)
            log.info("screenshot saved", extra={"fields": {"path": str(path)}})
            self.stop()

    return KioskApp


def __getattr__(name: str):
    if name == "KioskApp":
        return _make_app_class()
    raise AttributeError(name)
