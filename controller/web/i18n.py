"""The console's translation catalogues (zh-CN default, zh-HK, en) and language choice per request."""

from __future__ import annotations

import json
from functools import cache
from pathlib import Path
from typing import Any

from markupsafe import Markup, escape

from controller.fleet_clock import FleetClock
from controller.web import vocabulary

LANGS = ("zh-CN", "zh-HK", "en")
DEFAULT = "zh-CN"
_DIR = Path(__file__).parent / "i18n"
# Detail fields that hold an identifier (shown as code, never translated).
ID_FIELDS = frozenset({"notice", "notice_id", "ref", "code", "token_id", "boot_id", "release", "version",
                       "manifest_sha256"})
# Chinese tags that mean Traditional characters: the script, or a region that writes it. Hong Kong
# Traditional (zh-HK) is the console's one Traditional catalogue, so Taiwan and Macao readers get it.
_TRADITIONAL = frozenset({"hant", "hk", "mo", "tw"})


@cache
def catalogue(lang: str) -> dict[str, str]:
    return json.loads((_DIR / f"{lang}.json").read_text(encoding="utf-8"))


def choose(cookie: str | None, accept_language: str | None) -> str:
    """The ``lang`` cookie wins, then the browser's most preferred supported language (by ``q``,
    ties in the order given), then zh-CN."""
    if cookie in LANGS:
        return cookie
    ranked = []
    for order, part in enumerate((accept_language or "").split(",")):
        tag, *params = (p.strip() for p in part.split(";"))
        lang = _supported(tag.lower())
        quality = _quality(params)
        if lang and quality > 0:
            ranked.append((-quality, order, lang))
    return min(ranked)[2] if ranked else DEFAULT


def _supported(tag: str) -> str | None:
    """The console language that serves a browser's language tag (``zh-Hant-TW``, ``en-GB``), if any."""
    primary, *subtags = tag.split("-")
    if primary == "en":
        return "en"
    if primary == "zh":
        return "zh-HK" if _TRADITIONAL & set(subtags) else "zh-CN"
    return None


def _quality(params: list[str]) -> float:
    for param in params:
        name, _, value = param.partition("=")
        if name.strip() == "q":
            try:
                return float(value)
            except ValueError:
                return 0.0  # a malformed weight: the browser did not say it wants this language
    return 1.0


def switch_to(lang: str) -> list[tuple[str, str]]:
    """The other console languages for the header's links, each named in its own language
    (繁體中文 on a Simplified page, 简体中文 on a Traditional one), so a reader finds their own."""
    return [(other, catalogue(other)[f"lang.{other}"]) for other in LANGS if other != lang]


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

    def term(self, kind: str, value: object) -> str:
        """A data word (a mode, device, action, group, ...; see ``vocabulary``) in this language.

        Services and rating tags take their names from the service catalogue. An id the catalogue
        lacks is shown as it is (the page test fails on it) rather than hidden."""
        if value is None or value == "":
            return ""
        text = str(value)
        if kind in ("service", "tag"):
            # Report figures name a few services the kiosk catalogue does not list (ratings).
            return vocabulary.catalogue_name(kind, text, self.lang) or self._cat.get(f"{kind}.{text}") or text
        if kind == "action":
            text = vocabulary.LEGACY_ACTIONS.get(text, text)
        return self._cat.get(f"{kind}.{text}") or text

    def terms(self, *kinds: str) -> dict[str, dict[str, str]]:
        """The words of these vocabularies in this language, for the live page scripts."""
        legacy = {"action": tuple(vocabulary.LEGACY_ACTIONS)}
        return {k: {v: self.term(k, v) for v in (*vocabulary.VOCABULARIES[k], *legacy.get(k, ()))} for k in kinds}

    def target(self, target: str | None) -> str | Markup:
        """What an audit row is about: ``kiosk:GD-1`` reads "自助机 GD-1"; a user or token name stays."""
        kind, sep, name = str(target or "").partition(":")
        if sep and kind in vocabulary.VOCABULARIES["target"]:
            # The thing's id is a code (a kiosk id, a notice id such as "water"), not a word to translate.
            return Markup('%s <code class="id">%s</code>') % (self.term("target", kind), name)
        return self.term("target", kind) if kind == "fleet" else str(target or "")

    def actor(self, actor: str | None) -> str:
        """``console:ada`` reads "控制台 ada"; a person's name stays as it is."""
        kind, sep, name = str(actor or "").partition(":")
        if kind in vocabulary.VOCABULARIES["actor"]:
            return f"{self.term('actor', kind)} {name}".strip()
        return str(actor or "")

    def audit_result(self, result: str | None) -> str:
        """An audit row's result: ``ok``, a known outcome, or ``error: ...``/``rejected: ...`` with
        the reason the controller gave (a validation message, named field included)."""
        text = str(result or "ok")
        known = self._cat.get(f"auditresult.{text.replace(' ', '_')}") or self._cat.get(f"cmdstatus.{text}")
        if known:
            return known
        head, sep, why = text.partition(": ")
        label = self._cat.get(f"auditresult.{head}")
        if label and sep:
            return self("common.field", name=label, value=self._cat.get(f"auditresult.{why.replace(' ', '_')}", why))
        return label or text

    def fields(self, mapping: object) -> str:
        """A device's detail, an event's body or a command's result as readable fields
        ("纸张：缺纸 · 机盖：关闭"), never a dict's text; a bare id is read as a fault."""
        if not isinstance(mapping, dict):
            return escape(self.term("fault", mapping))
        parts = []
        for key, value in sorted(mapping.items()):
            if key in vocabulary.ENVELOPE or value is None or value == "" or value == {} or value == []:
                continue
            # Everything interpolated is escaped (details come from kiosks); an identifier (a notice's,
            # a reference) is shown as the code it is, not as a word to translate.
            shown = Markup('<code class="id">%s</code>') % value if key in ID_FIELDS and isinstance(value, str) \
                else escape(self._value(key, value))
            parts.append(self("common.field", name=escape(self.term("field", key)), value=shown))
        return Markup(" · ".join(parts))

    def _value(self, key: str, value: object) -> str:
        if isinstance(value, bool):
            return self("common.yes") if value else self("common.no")
        if isinstance(value, dict):
            return ", ".join(f"{k} {v}" for k, v in sorted(value.items()) if not isinstance(v, dict | list))
        if isinstance(value, list):
            return ", ".join(self._value(key, v) for v in value)
        if key.endswith("_at") and isinstance(value, int | float):
            return self.when(value)
        kind = vocabulary.FIELD_KINDS.get(key)
        return self.term(kind, value) if kind else str(value)

    def alarm_message(self, alarm: dict[str, Any]) -> str:
        """An alarm's message from its rule id and parameters (the device it is about), in this
        language; the English text the rule formatted is shown only for a rule without a text here."""
        template = self._cat.get(f"alarmmsg.{alarm.get('kind') or alarm.get('rule')}")
        if template is None:
            return str(alarm.get("message") or "")
        params = {str(k): v for k, v in (alarm.get("params") or {}).items()}
        params["device"] = params.get("device") or alarm.get("subject") or ""
        words = {k: (self.term(vocabulary.ALARM_PARAM_KINDS[k], v) if k in vocabulary.ALARM_PARAM_KINDS else str(v))
                 for k, v in params.items() if v not in (None, "")}
        return template.format_map(_Missing(words))

    def when(self, ts: float | None, *, seconds: bool = True) -> str:
        """A stored UTC time in the fleet's zone; no time reads "never" in this language."""
        return self.clock.show(ts, seconds=seconds, empty=self("common.never"))


class _Missing(dict):
    """Format parameters where one an alarm row lacks (an older rule's) reads as a dash, not an error."""

    def __missing__(self, key: str) -> str:
        return "–"


def for_request(request: Any) -> Translator:
    """The translator for a console request: its language, the console's fleet clock."""
    console = getattr(request.app.state, "console", None)
    return Translator(request.state.lang, getattr(console, "clock_zone", None))
