"""Translation catalogues: every string a resident reads comes from here (zh-CN default)."""

from __future__ import annotations

import json
from functools import cache
from pathlib import Path

LANGUAGES = ("zh-CN", "zh-HK", "en")
DEFAULT_LANGUAGE = "zh-CN"
_DIR = Path(__file__).parent


@cache
def catalogue(lang: str) -> dict[str, str]:
    if lang not in LANGUAGES:
        raise KeyError(f"unknown language {lang!r}; known: {', '.join(LANGUAGES)}")
    return json.loads((_DIR / f"{lang}.json").read_text(encoding="utf-8"))


def tr(key: str, lang: str = DEFAULT_LANGUAGE, **params: object) -> str:
    """Translate ``key``; a key missing in a language falls back to zh-CN, then to the key itself."""
    text = catalogue(lang).get(key) or catalogue(DEFAULT_LANGUAGE).get(key) or key
    return text.format(**params) if params else text
