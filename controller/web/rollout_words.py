"""A roll-out's reason (``controller.rollout_reasons``) in the operator's language, from the
console's catalogues: ``roreason.<code>`` with the reason's parameters, and ``updatereason.<id>``
for what a kiosk reported. The console pages, their live frames and kioskctl all read it here.

A reason reads as three parts: ``text`` (the catalogue's sentence), ``code`` (a reason id this
console has no text for: shown as the code it is) and ``detail`` (data as it came: the kiosk's
own words after its reason id, an operator's note; shown as a code, never translated).
"""

from __future__ import annotations

from functools import cache
from typing import Any

from markupsafe import Markup, escape

from controller import rollout_reasons as RR
from controller.web.i18n import LANGS, Translator

Parts = dict[str, str]


class _Dash(dict):
    def __missing__(self, key: str) -> str:
        return "–"  # a parameter an older record lacks


def _value(name: str, value: object) -> str:
    if name in RR.SHARES and isinstance(value, int | float):
        return f"{value * 100:.1f}%"
    return str(value)


def parts(t: Translator, reason: RR.Reason | None) -> Parts:
    reason = RR.normalize(reason)
    if not reason:
        return {"text": "", "code": "", "detail": ""}
    code, params = reason["code"], reason["params"]
    if code == "text":
        return {"text": str(params.get("text", "")), "code": "", "detail": ""}
    if code == "kiosk":
        rid = str(params.get("id", ""))
        known = t.maybe(f"updatereason.{rid}", "") if rid else ""
        return {"text": known, "code": "" if known else rid, "detail": str(params.get("detail", ""))}
    template = t.maybe(f"roreason.{code}", "")
    if not template:
        return {"text": "", "code": code, "detail": ""}
    text = template.format_map(_Dash({k: _value(k, v) for k, v in params.items() if k != "note"}))
    return {"text": text, "code": "", "detail": str(params.get("note", ""))}


def html(t: Translator, reason: RR.Reason | None) -> Markup:
    """The reason for a page: everything escaped, codes and data in ``<code class="id">``."""
    p = parts(t, reason)
    out = [escape(p["text"])] if p["text"] else []
    out += [Markup('<code class="id">%s</code>') % p[k] for k in ("code", "detail") if p[k]]
    return Markup(" ").join(out)


def plain(t: Translator, reason: RR.Reason | None) -> str:
    """The reason for a terminal (kioskctl): the parts in one line."""
    p = parts(t, reason)
    return " ".join(v for v in (p["text"], p["code"], f"({p['detail']})" if p["detail"] else "") if v)


def every_language(reason: RR.Reason | None) -> dict[str, Parts]:
    """The reason's parts in each console language, for a live frame every page reads (the page
    picks its own), so the words stay in one place: the catalogues, formatted here."""
    return {lang: parts(_translator(lang), reason) for lang in LANGS}


@cache
def _translator(lang: str) -> Translator:
    return Translator(lang)


def budget(t: Translator, b: dict[str, Any] | None) -> str:
    """A roll-out's failure budget now (``controller.rollouts.budget``); empty for a roll-out
    created before budgets."""
    if not b:
        return ""
    return t("rollouts.budget", failed=b["failed"], limit=b["limit"], at_risk=b["at_risk"],
             share=_value("budget", b["share"]), targets=b["targets"])


def budget_every_language(b: dict[str, Any] | None) -> dict[str, str]:
    return {lang: budget(_translator(lang), b) for lang in LANGS}


def frame_kiosk(k: dict[str, Any]) -> dict[str, Any]:
    return {"wave": k["wave"], "state": k["state"], "reason": k["reason"], "reason_text": every_language(k["reason"])}
