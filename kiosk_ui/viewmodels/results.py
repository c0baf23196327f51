"""What a service's result looks like: lines on screen and the receipt document, per language."""

from __future__ import annotations

import functools
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

from contract.catalogue import Service
from foundation.logs import mask_phone
from kiosk_ui.devices import ResidentIdentity
from kiosk_ui.i18n import tr


def _option_name(service: Service, field: str, option_id: str, lang: str) -> str:
    for step in service.steps:
        if step.field == field:
            for o in step.options:  # all of them: a dependent step's names are looked up by id too
                if o.id == option_id:
                    return o.names.get(lang) or o.names["zh-CN"]
    return option_id


@functools.cache
def _default_certificate() -> Service | None:
    """Parsed once: this runs on the UI thread on every refresh of a result screen."""
    from contract.catalogue import load_default

    return load_default().get("certificate")


def _option_name_any(option_id: str, lang: str) -> str:
    cert = _default_certificate()
    return _option_name(cert, "kind", option_id, lang) if cert else option_id


def local_date(yyyymmdd: str, lang: str) -> str:
    """A card's date (``20300101``) as the resident reads dates in their language; anything that
    is not such a date is shown as it came."""
    if len(yyyymmdd) != 8 or not yyyymmdd.isdigit():
        return yyyymmdd
    y, m, d = int(yyyymmdd[:4]), int(yyyymmdd[4:6]), int(yyyymmdd[6:])
    if not (1 <= m <= 12 and 1 <= d <= 31):
        return yyyymmdd
    return tr("date.format", lang, year=y, month=m, day=d, month_name=tr(f"date.month_{m}", lang))


def result_lines(service: Service, data: dict[str, Any], answers: dict[str, str],
                 identity: ResidentIdentity | None, lang: str, *, printed: bool = False) -> list[str]:
    """The result as short lines, biggest first (the first line is shown largest). ``printed``:
    the lines of the paper, where a certificate names its holder in full (see docs/kiosk.md)."""
    sid = service.id
    if sid == "queue_ticket":
        lines = [tr("result.ticket", lang, number=data["number"]),
                 _option_name(service, "counter", data.get("counter", ""), lang)]
        if data.get("offline"):
            lines.append(tr("result.ticket_offline", lang))
        else:
            lines.append(tr("result.ticket_wait", lang, ahead=data["ahead"], minutes=data["wait_minutes"]))
        return lines
    if sid == "appointment":
        return [tr("result.appointment", lang, slot=data["slot"]),
                tr("result.appointment_site", lang, site=_option_name(service, "site", data["site"], lang)),
                tr("result.code", lang, code=data["code"])]
    if sid == "certificate":
        kind = _option_name(service, "kind", data["kind"], lang)
        # The holder appears once: in full on the paper certificate (it is the resident's document,
        # and the backend's record holds that name), masked on the screen that passers-by can see.
        # The ID number is masked on both: the controller stores nothing else.
        holder = (identity.name if printed else identity.masked_name()) if identity else ""
        number = identity.masked_number() if identity else ""
        return [tr("result.certificate", lang, kind=kind), tr("result.code", lang, code=data["code"]),
                tr("result.certificate_holder", lang, name=holder, number=number),
                tr("result.certificate_verify", lang)]
    if sid == "certificate_check":
        if not data.get("valid"):
            return [tr("result.cert_invalid", lang), tr("result.code", lang, code=data.get("code", ""))]
        kind = _option_name_any(data["kind"], lang)
        return [tr("result.cert_valid", lang), kind, tr("result.code", lang, code=data["code"]),
                tr("result.certificate_holder", lang, name=data["holder"], number=data["id_masked"]),
                data["issued_date"]]
    if sid == "social_security":
        lines = []
        if identity is not None:
            lines.append(tr("result.ss_card", lang, number=identity.masked_number(),
                            valid=local_date(identity.details.get("valid_until", ""), lang)))
        if data.get("enrolled"):
            lines.append(tr("result.ss_enrolled", lang, status=data["status"], balance=data["medical_balance"]))
        else:
            lines.append(tr("result.ss_no_record", lang))
        return lines
    if sid == "volunteer":
        action = answers.get("action")
        if action == "check_in":
            return [tr("result.volunteer_in", lang), tr("result.volunteer_balance", lang, balance=data["balance"])]
        if action == "check_out":
            return [tr("result.volunteer_out", lang, hours=data["hours"]),
                    tr("result.volunteer_balance", lang, balance=data["balance"])]
        lines = [tr("result.volunteer_balance", lang, balance=data["balance"])]
        if data.get("checked_in"):
            lines.append(tr("result.volunteer_open", lang))
        return lines
    if sid == "notices":
        titles = [n["titles"].get(lang) or n["titles"]["zh-CN"] for n in data.get("notices", [])]
        return titles or [tr("result.no_notices", lang)]
    if sid == "feedback":
        phone = answers.get("phone", "")
        reply = (tr("result.feedback_call", lang, days=data["reply_days"], phone=mask_phone(phone)) if phone
                 else tr("result.feedback_reply", lang, days=data["reply_days"]))
        lines = [tr("result.feedback", lang, ref=data["ref"])]
        if answers.get("problem"):
            lines.append(tr("result.feedback_problem", lang,
                            problem=_option_name(service, "problem", answers["problem"], lang)))
        return [*lines, reply]
    return [f"{k}: {v}" for k, v in data.items()]


def receipt_items(service: Service, data: dict[str, Any], answers: dict[str, str],
                  identity: ResidentIdentity | None, lang: str, kiosk_id: str, now: float,
                  *, zone: str = "Asia/Shanghai") -> list[dict]:
    """The receipt document for the printer driver (``Receipt.from_dicts``); its time is printed in
    the fleet's time zone ``zone`` (the kiosk config's ``time_zone``), whatever the Pi's own zone."""
    lines = result_lines(service, data, answers, identity, lang, printed=True)
    items: list[dict] = [{"text": tr("app.title", lang), "align": "center", "bold": True},
                         {"text": service.name(lang), "align": "center"}, {"feed": 1}]
    items.append({"text": lines[0], "align": "center", "bold": True, "size": [2, 2]})
    items += [{"text": line} for line in lines[1:]]
    if service.id == "certificate":
        items.append({"qr": data["qr"]})
    elif service.id == "appointment":
        items.append({"qr": f"KIOSK-APPT:{data['code']}"})
    when = datetime.fromtimestamp(now, ZoneInfo(zone)).strftime("%Y-%m-%d %H:%M")
    items += [{"feed": 1}, {"text": f"{when}  {kiosk_id}", "align": "center"}]
    return items
