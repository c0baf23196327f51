"""The reference service backend: one function per (service, op), over the ``svc_`` tables.

Each takes ``(conn, kiosk_id, args, now)`` and returns the response data, or raises
:class:`ServiceError` with a code the kiosk translates for the resident. A real government backend
replaces this module behind the same request/response shapes.
"""

from __future__ import annotations

import functools
import json
import re
import secrets
from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any

from contract.catalogue import PHONE, load_default
from controller import fleet_clock, sql_dialect
from foundation.errors import KioskError
from foundation.logs import mask_name

AVG_SERVICE_MINUTES = 6  # per ticket ahead; the centre's measured average
COUNTER_PREFIX = {"general": "A", "social": "B", "civil": "C"}
SITES = ("centre", "street")
SLOT_TIMES = ("09:00", "10:00", "11:00", "14:00", "15:00", "16:00")
SLOT_CAPACITY = 4
SLOT_DAYS = 3
CERT_KINDS = ("residence", "household")
GROUPS = ("all", "elderly", "youth", "children", "women")
FEEDBACK_CATEGORIES = ("environment", "safety", "facilities", "other")
REPLY_DAYS = {"normal": 3, "urgent": 1}  # working days promised to a resident, by urgency (kiosk and console)
MAX_VOLUNTEER_HOURS = 12.0  # a forgotten check-out does not credit days
# mask_id_number's shape for the numbers a kiosk reads (15 to 18 characters: resident ID cards,
# permits, foreigners' permanent residence cards): first 4 and last 4 kept, the rest stars.
MASKED_ID = re.compile(r"[0-9A-Za-z]{4}\*{7,10}[0-9A-Za-z]{4}")
# Read aloud by residents and typed by staff: no look-alike pairs (0/O, 1/I, 5/S, 8/B, 2/Z), the
# letters of each pair dropped since references also carry digits (a feedback ref holds its date).
CODE_ALPHABET = "ACDEFGHJKLMNPQRTUVWXY23456789"
# Advisory-lock namespaces (``sql_dialect.lock``; PostgreSQL only): what two controller instances
# must not do at once. A site's queue (numbering and calling its tickets), an appointment time,
# a volunteer's open check-in.
LOCK_QUEUE, LOCK_SLOT, LOCK_VOLUNTEER = 16160, 16161, 16162


class ServiceError(KioskError):
    """A request the backend refuses; ``code`` is stable and translated on the kiosk."""

    def __init__(self, code: str, message: str) -> None:
        self.code = code
        super().__init__(message)


def _arg(args: dict[str, Any], name: str, allowed: tuple[str, ...] | None = None) -> str:
    value = args.get(name)
    if not isinstance(value, str) or not value or len(value) > 200:
        raise ServiceError("bad_request", f"argument {name!r} must be a non-empty string")
    if allowed is not None and value not in allowed:
        raise ServiceError("bad_request", f"argument {name!r} must be one of {', '.join(allowed)}, got {value!r}")
    return value


def _resident(args: dict[str, Any]) -> str:
    ref = _arg(args, "resident_ref")
    if len(ref) != 32 or any(c not in "0123456789abcdef" for c in ref):
        raise ServiceError("bad_request", "resident_ref must be 32 lowercase hex digits")
    return ref


def _code(n: int = 8) -> str:
    return "".join(secrets.choice(CODE_ALPHABET) for _ in range(n))


def _local(conn: Any, now: float) -> datetime:
    """``now`` in the fleet's zone: the one the controller recorded in its store (its ``time_zone``
    setting), so a ticket's day, a reference's date and a reply-due date agree with the console."""
    return fleet_clock.recorded(conn).local(now)


# -- queue tickets ---------------------------------------------------------------------------------

def kiosk_site(conn: Any, kiosk_id: str) -> str:
    """The kiosk's site in the fleet registry; "" when unknown (or a service database without it)."""
    try:
        row = conn.execute("SELECT site FROM kiosks WHERE kiosk_id=?", (kiosk_id,)).fetchone()
    except sql_dialect.all_errors() as exc:
        if sql_dialect.missing_schema(exc):  # a standalone service database without the fleet registry
            return ""
        raise
    return row[0] if row else ""


def lock_queue(conn: Any, site: str) -> None:
    """Take the site's queue for the open transaction: its numbering (gap-free, unique per day and
    counter) and its calls, whichever controller instance answers (``sql_dialect.lock``)."""
    sql_dialect.lock(conn, LOCK_QUEUE, site)


def ticket_take(conn: Any, kiosk_id: str, args: dict, now: float) -> dict:
    """A ticket of the kiosk's site: every community centre numbers its own queue from 001 each day."""
    counter = _arg(args, "counter", tuple(COUNTER_PREFIX))
    day = _local(conn, now).strftime("%Y-%m-%d")
    site = kiosk_site(conn, kiosk_id)
    lock_queue(conn, site)
    seq = conn.execute("SELECT COALESCE(MAX(seq), 0) + 1 FROM svc_tickets WHERE day=? AND site=? AND counter=?",
                       (day, site, counter)).fetchone()[0]
    ahead = conn.execute("SELECT COUNT(*) FROM svc_tickets WHERE day=? AND site=? AND counter=? AND status='waiting'",
                         (day, site, counter)).fetchone()[0]
    number = f"{COUNTER_PREFIX[counter]}{seq:03d}"
    conn.execute("INSERT INTO svc_tickets (kiosk_id, site, day, counter, number, seq, issued_at) "
                 "VALUES (?,?,?,?,?,?,?)", (kiosk_id, site, day, counter, number, seq, now))
    from controller.service_backend.queue_calls import recent_median_wait  # queue builds on this module

    measured = recent_median_wait(conn, counter, site, now) if ahead else None
    if measured is not None:  # what residents waited lately at this counter beats a fixed guess
        return {"number": number, "counter": counter, "ahead": ahead, "wait_minutes": round(measured),
                "wait_basis": "measured"}
    return {"number": number, "counter": counter, "ahead": ahead, "wait_minutes": ahead * AVG_SERVICE_MINUTES,
            "wait_basis": "estimate"}


def ticket_call(conn: Any, kiosk_id: str, args: dict, now: float) -> dict:
    """Staff call the next waiting ticket of a counter at the calling terminal's site."""
    counter = _arg(args, "counter", tuple(COUNTER_PREFIX))
    from controller.service_backend.queue_calls import call_in_transaction

    site = kiosk_site(conn, kiosk_id)
    lock_queue(conn, site)
    ticket = call_in_transaction(conn, site, now=now, called_by=kiosk_id, counter=counter)
    return {"number": ticket["number"]}


# -- appointments ----------------------------------------------------------------------------------

def appointment_slots(conn: Any, kiosk_id: str, args: dict, now: float) -> dict:
    site = _arg(args, "site", SITES)
    local = _local(conn, now)
    out = []
    for d in range(1, SLOT_DAYS + 1):
        day = (local + timedelta(days=d)).strftime("%Y-%m-%d")
        for t in SLOT_TIMES:
            slot = f"{day} {t}"
            taken = conn.execute("SELECT COUNT(*) FROM svc_appointments WHERE site=? AND slot=? AND status='booked'",
                                 (site, slot)).fetchone()[0]
            if taken < SLOT_CAPACITY:
                out.append({"id": slot, "label": slot, "free": SLOT_CAPACITY - taken})
    return {"site": site, "slots": out}


def appointment_book(conn: Any, kiosk_id: str, args: dict, now: float) -> dict:
    site = _arg(args, "site", SITES)
    slot = _arg(args, "slot")
    ref = _resident(args)
    # The slot's bookings at every site (a resident's other booking at that time counts too).
    sql_dialect.lock(conn, LOCK_SLOT, slot)
    free = {s["id"] for s in appointment_slots(conn, kiosk_id, {"site": site}, now)["slots"]}
    if slot not in free:
        raise ServiceError("slot_full", f"slot {slot} at {site} is not available")
    if conn.execute("SELECT 1 FROM svc_appointments WHERE resident_ref=? AND slot=? AND status='booked'",
                    (ref, slot)).fetchone():
        raise ServiceError("already_booked", "this resident already has an appointment at that time")
    code = _code(6)
    conn.execute("INSERT INTO svc_appointments (code, kiosk_id, site, slot, resident_ref, booked_at) "
                 "VALUES (?,?,?,?,?,?)", (code, kiosk_id, site, slot, ref, now))
    return {"code": code, "site": site, "slot": slot}


# -- certificates ----------------------------------------------------------------------------------

def certificate_issue(conn: Any, kiosk_id: str, args: dict, now: float) -> dict:
    kind = _arg(args, "kind", CERT_KINDS)
    name = _arg(args, "holder_name")
    id_masked = _arg(args, "id_masked")
    if not MASKED_ID.fullmatch(id_masked):
        # The backend refuses to store more of a number than the mask keeps, whatever the kiosk sends.
        raise ServiceError("bad_request", "id_masked must be a masked ID number: 4 characters, only '*' "
                           "(at least 7 of them), 4 characters, as 4401**********1234")
    code = _code(10)
    # Bound to the issuing kiosk's site: a verifier sees which community vouches for it, so a
    # captured kiosk can only ever speak for its own site.
    site = kiosk_site(conn, kiosk_id)
    conn.execute("INSERT INTO svc_certificates (code, kiosk_id, kind, holder_name, id_masked, issued_at, site) "
                 "VALUES (?,?,?,?,?,?,?)", (code, kiosk_id, kind, name, id_masked, now, site))
    return {"code": code, "qr": f"KIOSK-CERT:{code}", "kind": kind, "issued_at": now, "site": site,
            "issued_date": _local(conn, now).strftime("%Y-%m-%d")}


def certificate_verify(conn: Any, kiosk_id: str, args: dict, now: float) -> dict:
    code = _arg(args, "code").removeprefix("KIOSK-CERT:").strip().upper()
    row = conn.execute("SELECT kind, holder_name, id_masked, issued_at, site FROM svc_certificates WHERE code=?",
                       (code,)).fetchone()
    if row is None:
        return {"valid": False, "code": code}
    return {"valid": True, "code": code, "kind": row[0], "holder": mask_name(row[1]),
            "id_masked": row[2], "issued_date": _local(conn, row[3]).strftime("%Y-%m-%d"),
            "site": row[4], "same_site": bool(row[4]) and row[4] == kiosk_site(conn, kiosk_id)}


# -- social security, volunteers, notices, feedback, rating ----------------------------------------

def ss_info(conn: Any, kiosk_id: str, args: dict, now: float) -> dict:
    ref = _arg(args, "card_ref")
    row = conn.execute("SELECT status, insured_since, medical_balance FROM svc_ss_accounts WHERE card_ref=?",
                       (ref,)).fetchone()
    if row is None:
        return {"enrolled": False}
    return {"enrolled": True, "status": row[0], "insured_since": row[1], "medical_balance": row[2]}


def _balance(conn: Any, ref: str) -> float:
    return round(conn.execute("SELECT COALESCE(SUM(hours), 0) FROM svc_volunteer_sessions WHERE resident_ref=?",
                              (ref,)).fetchone()[0], 1)


def volunteer_check_in(conn: Any, kiosk_id: str, args: dict, now: float) -> dict:
    ref = _resident(args)
    sql_dialect.lock(conn, LOCK_VOLUNTEER, ref)  # one open check-in, also from two kiosks at once
    if conn.execute("SELECT 1 FROM svc_volunteer_sessions WHERE resident_ref=? AND ended IS NULL", (ref,)).fetchone():
        raise ServiceError("already_checked_in", "already checked in; check out first")
    conn.execute("INSERT INTO svc_volunteer_sessions (resident_ref, kiosk_id, started) VALUES (?,?,?)",
                 (ref, kiosk_id, now))
    return {"started": now, "balance": _balance(conn, ref)}


def volunteer_check_out(conn: Any, kiosk_id: str, args: dict, now: float) -> dict:
    ref = _resident(args)
    sql_dialect.lock(conn, LOCK_VOLUNTEER, ref)
    row = conn.execute("SELECT id, started FROM svc_volunteer_sessions WHERE resident_ref=? AND ended IS NULL",
                       (ref,)).fetchone()
    if row is None:
        raise ServiceError("not_checked_in", "no open check-in to close")
    hours = round(min(max(now - row[1], 0) / 3600, MAX_VOLUNTEER_HOURS), 1)
    conn.execute("UPDATE svc_volunteer_sessions SET ended=?, hours=? WHERE id=?", (now, hours, row[0]))
    return {"hours": hours, "balance": _balance(conn, ref)}


def volunteer_balance(conn: Any, kiosk_id: str, args: dict, now: float) -> dict:
    ref = _resident(args)
    open_ = conn.execute("SELECT started FROM svc_volunteer_sessions WHERE resident_ref=? AND ended IS NULL",
                         (ref,)).fetchone()
    return {"balance": _balance(conn, ref), "checked_in": open_ is not None}


def notices_list(conn: Any, kiosk_id: str, args: dict, now: float) -> dict:
    group = _arg(args, "group", GROUPS)
    out = []
    for nid, groups, titles in conn.execute("SELECT id, groups, titles FROM svc_notices ORDER BY published DESC, id"):
        g = json.loads(groups)
        if group == "all" or group in g or "all" in g:
            out.append({"id": nid, "groups": g, "titles": json.loads(titles)})
    return {"group": group, "notices": out}


@functools.cache
def feedback_problems(category: str) -> tuple[str, ...]:
    """The problems the service catalogue offers for ``category`` (its feedback ``problem`` step)."""
    svc = load_default().get("feedback")
    step = next((s for s in svc.steps if s.field == "problem"), None) if svc else None
    return tuple(o.id for o in step.options_for({"category": category})) if step else ()


def feedback_submit(conn: Any, kiosk_id: str, args: dict, now: float) -> dict:
    category = _arg(args, "category", FEEDBACK_CATEGORIES)
    urgency = _arg(args, "urgency", tuple(REPLY_DAYS))
    # A kiosk from before the problem step sends none; one that sends a problem sends one the
    # catalogue offers for that category.
    problem = _arg(args, "problem", feedback_problems(category)) if "problem" in args else ""
    phone = args.get("phone", "")
    if not isinstance(phone, str) or (phone and not PHONE.fullmatch(phone)):
        raise ServiceError("bad_request", "phone must be an 11-digit mobile or a 7-8 digit landline number")
    ref = "F" + _local(conn, now).strftime("%y%m%d") + _code(4)
    # The number is the resident's own request for a call back: stored for the staff, never logged.
    conn.execute("INSERT INTO svc_feedback (ref, kiosk_id, category, urgency, created, phone, problem) "
                 "VALUES (?,?,?,?,?,?,?)", (ref, kiosk_id, category, urgency, now, phone, problem))
    return {"ref": ref, "reply_days": REPLY_DAYS[urgency], "call_back": bool(phone), "problem": problem}


def rating_submit(conn: Any, kiosk_id: str, args: dict, now: float) -> dict:
    service = _arg(args, "service")
    stars = args.get("stars")
    if not isinstance(stars, int) or isinstance(stars, bool) or not 1 <= stars <= 5:
        raise ServiceError("bad_request", f"stars must be an integer 1-5, got {stars!r}")
    tags = args.get("tags", [])
    if not isinstance(tags, list) or len(tags) > 10 or any(not isinstance(t, str) or len(t) > 40 for t in tags):
        raise ServiceError("bad_request", "tags must be a list of at most 10 short strings")
    conn.execute("INSERT INTO svc_ratings (kiosk_id, service, stars, tags, created) VALUES (?,?,?,?,?)",
                 (kiosk_id, service, stars, json.dumps(tags), now))
    return {}


Op = Callable[[Any, str, dict, float], dict]
OPS: dict[tuple[str, str], Op] = {
    ("queue_ticket", "take"): ticket_take,
    ("queue_ticket", "call"): ticket_call,
    ("appointment", "slots"): appointment_slots,
    ("appointment", "book"): appointment_book,
    ("certificate", "issue"): certificate_issue,
    ("certificate", "verify"): certificate_verify,
    ("certificate_check", "verify"): certificate_verify,  # the kiosk's scan-to-verify service
    ("social_security", "info"): ss_info,
    ("volunteer", "check_in"): volunteer_check_in,
    ("volunteer", "check_out"): volunteer_check_out,
    ("volunteer", "balance"): volunteer_balance,
    ("notices", "list"): notices_list,
    ("feedback", "submit"): feedback_submit,
    ("rating", "submit"): rating_submit,
}
