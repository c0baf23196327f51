"""Home (attract) screen: the time, the kiosk id and the language, in the current language."""

from __future__ import annotations

import time
from dataclasses import dataclass, field

from kiosk_ui.i18n import DEFAULT_LANGUAGE, LANGUAGES, tr


@dataclass
class HomeViewModel:
    kiosk_id: str
    language: str = DEFAULT_LANGUAGE
    languages: tuple[str, ...] = field(default=LANGUAGES)

    def set_language(self, lang: str) -> None:
        if lang not in self.languages:
            raise ValueError(f"unknown language {lang!r}")
        self.language = lang

    def texts(self, now: float | None = None) -> dict[str, str]:
        t = time.localtime(now if now is not None else time.time())
        return {
            "title": tr("app.title", self.language),
            "subtitle": tr("home.subtitle", self.language),
            "touch": tr("home.touch_to_start", self.language),
            "kiosk": tr("home.kiosk_id", self.language, kiosk_id=self.kiosk_id),
            "clock": time.strftime("%Y-%m-%d %H:%M", t),
        }

    def language_labels(self) -> list[tuple[str, str]]:
        return [(lang, tr(f"lang.{lang}", lang)) for lang in self.languages]
