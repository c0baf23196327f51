"""The reference service backend: every service's ops, refusals with codes, and privacy of its tables;
on both backends of the fleet database (SQLite, PostgreSQL)."""

from __future__ import annotations

import sqlite3

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from controller import fleet_clock
from controller.fleet_db import FleetDb
from controller.service_backend import ensure_schema, handle_request

NOW = 1_764_000_000.0  # 2025-11-24 23:20 in Shanghai
REF = "0123456789abcdef0123456789abcdef"


@pytest.fixture(params=("sqlite", "postgresql"))
def conn(request, tmp_path):
    """A connection to the service tables: an in-memory SQLite database, or a fresh PostgreSQL fleet
    database with the fleet store's schema (where the controller keeps them)."""
    if request.param == "postgresql":
        c = FleetDb(tmp_path, request.getfixturevalue("postgres_url")).open_migrated()
    else:
        c = sqlite3.connect(":memory:")
    ensure_schema(c)
    ensure_schema(c)  # idempotent
    yield c
    c.close()


def call(conn, svc, op, now=NOW, kiosk="k1", **args):
    return handle_request(conn, kiosk, {"service": svc, "op": op, "args": args}, now)


def test_queue_tickets_number_and_wait(conn):
    a = call(conn, "queue_ticket", "take", counter="general")
    b = call(conn, "queue_ticket", "take", counter="general")
    c = call(conn, "queue_ticket", "take", counter="social")
    assert a["data"] == {"number": "A001", "counter": "general", "ahead": 0, "wait_minutes": 0, "wait_basis": "estimate"}
    assert b["data"]["number"] == "A002" and b["data"]["ahead"] == 1 and b["data"]["wait_minutes"] == 6
    assert c["data"]["number"] == "B001"
    assert call(conn, "queue_ticket", "call", counter="general")["data"]["number"] == "A001"
    assert call(conn, "queue_ticket", "take", counter="general")["data"]["ahead"] == 1
    # A new day starts again at 001.
    assert call(conn, "queue_ticket", "take", now=NOW + 86400, counter="general")["data"]["number"] == "A001"


def test_appointment_slots_fill_up(conn):
    slots = call(conn, "appointment", "slots", site="centre")["data"]["slots"]
    assert len(slots) == 18 and all(s["free"] == 4 for s in slots)
    slot = slots[0]["id"]
    for i in range(4):
        r = call(conn, "appointment", "book", site="centre", slot=slot, resident_ref=f"{i:032x}")
        assert r["ok"] and len(r["data"]["code"]) == 6
    full = call(conn, "appointment", "book", site="centre", slot=slot, resident_ref=REF)
    assert full == {"ok": False, "error": "slot_full", "message": full["message"]}
    assert slot not in [s["id"] for s in call(conn, "appointment", "slots", site="centre")["data"]["slots"]]
    again = call(conn, "appointment", "book", site="centre", slot=slots[1]["id"], resident_ref=f"{0:032x}")
    assert again["ok"]
    dup = call(conn, "appointment", "book", site="street", slot=slots[1]["id"], resident_ref=f"{0:032x}")
    assert dup["error"] == "already_booked"


def test_certificate_issue_and_verify(conn):
    r = call(conn, "certificate", "issue", kind="residence", holder_name="张三", id_masked="4401**********1234")
    assert r["ok"] and r["data"]["qr"] == "KIOSK-CERT:" + r["data"]["code"]
    v = call(conn, "certificate", "verify", code=r["data"]["qr"])["data"]
    assert v == {"valid": True, "code": r["data"]["code"], "kind": "residence", "holder": "张*",
                 "id_masked": "4401**********1234", "issued_date": "2025-11-25", "site": "", "same_site": False}
    assert call(conn, "certificate", "verify", code="NOPE")["data"]["valid"] is False
    # Only the mask's shape is stored: a number with a star or two in it is still a number.
    for bad in ("440101199001011234", "440101*99001011234", "4401**********12345", "4401*******", "**********1234"):
        r = call(conn, "certificate", "issue", kind="residence", holder_name="张三", id_masked=bad)
        assert r["error"] == "bad_request" and "4401**********1234" in r["message"], bad
    # Numbers ending in the check character X, and 15-character permits, keep their shape.
    for ok in ("4401**********123X", "ABCD*******1234"):
        assert call(conn, "certificate", "issue", kind="residence", holder_name="张三", id_masked=ok)["ok"], ok
    assert conn.execute("SELECT COUNT(*) FROM svc_certificates").fetchone()[0] == 3


def test_feedback_with_and_without_a_call_back_number(conn):
    r = call(conn, "feedback", "submit", category="safety", urgency="urgent", phone="13812345678")
    assert r["ok"] and r["data"]["call_back"] is True and r["data"]["reply_days"] == 1
    assert call(conn, "feedback", "submit", category="other", urgency="normal")["data"]["call_back"] is False
    for bad in ("12345678901", "138123456789", "13812345678 ", 13812345678, "0201234"):
        r = call(conn, "feedback", "submit", category="other", urgency="normal", phone=bad)
        assert r["error"] == "bad_request" and "phone" in r["message"], bad
    assert conn.execute("SELECT phone FROM svc_feedback ORDER BY created, ref").fetchall() in (
        [("13812345678",), ("",)], [("",), ("13812345678",)])


def test_volunteer_hours(conn):
    assert call(conn, "volunteer", "check_out", resident_ref=REF)["error"] == "not_checked_in"
    assert call(conn, "volunteer", "check_in", resident_ref=REF)["ok"]
    assert call(conn, "volunteer", "check_in", resident_ref=REF)["error"] == "already_checked_in"
    assert call(conn, "volunteer", "balance", resident_ref=REF)["data"] == {"balance": 0, "checked_in": True}
    out = call(conn, "volunteer", "check_out", now=NOW + 5400, resident_ref=REF)["data"]
    assert out == {"hours": 1.5, "balance": 1.5}
    call(conn, "volunteer", "check_in", now=NOW + 10_000, resident_ref=REF)
    capped = call(conn, "volunteer", "check_out", now=NOW + 10_000 + 3 * 86400, resident_ref=REF)["data"]
    assert capped == {"hours": 12.0, "balance": 13.5}
    assert call(conn, "volunteer", "balance", resident_ref="x")["error"] == "bad_request"


def test_notices_by_group(conn):
    elderly = call(conn, "notices", "list", group="elderly")["data"]["notices"]
    assert {n["id"] for n in elderly} == {"n1", "n5"}
    assert len(call(conn, "notices", "list", group="all")["data"]["notices"]) == 5
    assert elderly[0]["titles"]["zh-HK"]


def test_feedback_rating_and_ss(conn):
    f = call(conn, "feedback", "submit", category="safety", urgency="urgent")["data"]
    assert f["ref"].startswith("F251125") and f["reply_days"] == 1
    assert call(conn, "rating", "submit", service="queue_ticket", stars=5, tags=["fast"])["ok"]
    assert call(conn, "rating", "submit", service="queue_ticket", stars=6)["error"] == "bad_request"
    assert call(conn, "rating", "submit", service="queue_ticket", stars=True)["error"] == "bad_request"
    assert call(conn, "social_security", "info", card_ref="abc")["data"] == {"enrolled": False}
    conn.execute("INSERT INTO svc_ss_accounts VALUES ('abc', 'active', '2010-01', 321.5)")
    assert call(conn, "social_security", "info", card_ref="abc")["data"]["medical_balance"] == 321.5


def test_bad_requests_name_what_is_wrong(conn):
    r = handle_request(conn, "k1", {"service": "nope", "op": "x"}, NOW)
    assert r["error"] == "unknown_op" and "queue_ticket.take" in r["message"]
    r = handle_request(conn, "k1", {"service": "queue_ticket", "op": "take", "args": []}, NOW)
    assert r["error"] == "bad_request"
    r = call(conn, "queue_ticket", "take", counter="vip")
    assert r["error"] == "bad_request" and "counter" in r["message"]


@settings(max_examples=150, deadline=None)
@given(st.dictionaries(st.sampled_from(["service", "op", "args"]),
                       st.one_of(st.text(max_size=20), st.integers(), st.none(),
                                 st.dictionaries(st.text(max_size=12), st.one_of(st.text(max_size=12), st.integers()),
                                                 max_size=4))))
def test_any_body_gets_an_answer(body):
    c = sqlite3.connect(":memory:")
    ensure_schema(c)
    r = handle_request(c, "k1", body, NOW)
    assert isinstance(r["ok"], bool)
    c.close()


def test_tables_created_on_first_request():
    c = sqlite3.connect(":memory:")
    assert call(c, "queue_ticket", "take", counter="civil")["data"]["number"] == "C001"


def test_day_boundaries_follow_the_zone_the_controller_recorded(conn):
    # NOW is midnight in Shanghai (the default zone) and 16:00 of the day before in London.
    early = NOW - 3600
    assert call(conn, "queue_ticket", "take", now=early, counter="general")["data"]["number"] == "A001"
    assert call(conn, "queue_ticket", "take", counter="general")["data"]["number"] == "A001"  # a new day

    fleet_clock.record(conn, "Europe/London")  # what the controller does at start with its time_zone
    assert call(conn, "queue_ticket", "take", now=early, counter="social")["data"]["number"] == "B001"
    assert call(conn, "queue_ticket", "take", counter="social")["data"]["number"] == "B002"  # the same day
    feedback = call(conn, "feedback", "submit", category="other", urgency="normal")["data"]
    assert feedback["ref"].startswith("F251124")
    cert = call(conn, "certificate", "issue", kind="residence", holder_name="张三", id_masked="4401**********1234")
    assert cert["data"]["issued_date"] == "2025-11-24"
    assert call(conn, "certificate", "verify", code=cert["data"]["code"])["data"]["issued_date"] == "2025-11-24"
    slots = call(conn, "appointment", "slots", site="centre")["data"]["slots"]
    assert slots[0]["id"].startswith("2025-11-25 ")  # tomorrow in London; in Shanghai it is the 26th
    # Calling reads the same day: London's 15:00 ticket is still waiting today at 16:10.
    assert call(conn, "queue_ticket", "call", now=NOW + 600, counter="social")["data"]["number"] == "B001"


def test_feedback_problem_checked_against_the_catalogue(conn):
    r = call(conn, "feedback", "submit", category="facilities", problem="lift", urgency="urgent")
    assert r["ok"] and r["data"]["problem"] == "lift"
    # A problem of another category, an unknown one, or not a string: refused, naming the argument
    # and what it may be.
    for bad in ("parking", "earthquake", "", 7, None):
        r = call(conn, "feedback", "submit", category="facilities", problem=bad, urgency="normal")
        assert r["error"] == "bad_request" and "'problem'" in r["message"], bad
    r = call(conn, "feedback", "submit", category="facilities", problem="parking", urgency="normal")
    assert "street_light, lift, water_leak, other" in r["message"]
    # A kiosk from before the problem step sends none: still registered, with no problem.
    assert call(conn, "feedback", "submit", category="safety", urgency="normal")["ok"]
    assert sorted(conn.execute("SELECT category, problem FROM svc_feedback").fetchall()) == [
        ("facilities", "lift"), ("safety", "")]


def test_an_older_feedback_table_gains_the_problem_column_and_keeps_its_rows(tmp_path):
    path = tmp_path / "controller.sqlite3"
    old = sqlite3.connect(path)  # svc_feedback as the first release made it: no phone, no problem
    old.execute("CREATE TABLE svc_feedback (ref TEXT PRIMARY KEY, kiosk_id TEXT NOT NULL, category TEXT NOT NULL, "
                "urgency TEXT NOT NULL, created REAL NOT NULL, status TEXT NOT NULL DEFAULT 'open')")
    old.execute("INSERT INTO svc_feedback (ref, kiosk_id, category, urgency, created) "
                "VALUES ('F2511240001', 'k1', 'safety', 'urgent', 1.0)")
    old.commit()
    old.close()
    c = sqlite3.connect(path)
    ensure_schema(c)
    assert call(c, "feedback", "submit", category="environment", problem="noise", urgency="normal")["ok"]
    assert c.execute("SELECT ref, category, problem, phone FROM svc_feedback ORDER BY created").fetchall()[0] == (
        "F2511240001", "safety", "", "")
    assert c.execute("SELECT problem FROM svc_feedback ORDER BY created").fetchall() == [("",), ("noise",)]
    c.close()
