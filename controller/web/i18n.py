"""The console's translation catalogues (zh-CN default, en) and language choice per request."""

from __future__ import annotations

import json
import time
from functools import cache
from pathlib import Path

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
    def __init__(self, lang: str) -> None:
        self.lang = lang if lang in LANGS else DEFAULT
        self._cat = catalogue(self.lang)

    def __call__(self, key: str, **kw: object) -> str:
        text = self._cat.get(key) or catalogue(DEFAULT).get(key) or key
        return text.format(**kw) if kw else text

    def maybe(self, key: str, fallback: str) -> str:
        """A catalogue text for data-driven keys (alarm rules, severities), else the raw value."""
        return self._cat.get(key) or fallback

    def when(self, ts: float | None) -> str:
        if not ts:
            return self("common.never")
        return time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(ts))
