"""The console's translation catalogues (zh-CN default, en) and language choice per request."""

from __future__ import annotations

import json
from functools import cache
from pathlib import Path
from typing import Any

from controller.fleet_clock import FleetClock

LANGS = ("zh-CN", "en")
DEFAULT = "zh-CN"
_DIR = Path(__file__).parent / "i18n"


@cache
def catalogue(lang: str) -> dict[str, str]:
    return json.loads((_DIR / f"{lang}.json").read_text(encoding="utf-8"))


def choose(cookie: str | None, accept_language: str | None) -> str:
    """The ``lang`` cookie wins, then the browser's first supported language, then zh-CN."""
    if cookie in LANGS:
        return cookie
    for part in (accept_language or "").split(","):
        tag = part.split(";")[0].strip().lower()
        if tag.startswith("en"):
            return "en"
        if tag.startswith("zh"):
            return "zh-CN"
    return DEFAULT


class Translator:
    """Texts of one language and times in the fleet's zone (``clock``), for one request."""

    def __init__(self, lang: str, clock: FleetClock | None = None) -> None:
        self.lang = lang if lang in LANGS else DEFAULT
        self._cat = catalogue(self.lang)
        self.clock = clock or FleetClock()

    def __call__(self, key: str, **kw: object) -> str:
        text = self._cat.get(key) or catalogue(DEFAULT).get(key) or key
        return text.format(**kw) if kw else text

    def maybe(self, key: str, fallback: str) -> str:
        """A catalogue text for data-driven keys (alarm rules, severities), else the raw value."""
        return self._cat.get(key) or fallback

    def when(self, ts: float | None, *, seconds: bool = True) -> str:
        """A stored UTC time in the fleet's zone; no time reads "never" in this language."""
        return self.clock.show(ts, seconds=seconds, empty=self("common.never"))


def for_request(request: Any) -> Translator:
    """The translator for a console request: its language, the console's fleet clock."""
    console = getattr(request.app.state, "console", None)
    return Translator(request.state.lang, getattr(console, "clock_zone", None))
