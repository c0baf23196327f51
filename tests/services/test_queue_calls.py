"""Staff calling tickets: called_at stored, per site, idempotent, concurrency-safe; measured waits.
On both backends of the fleet database: the concurrency tests open one connection per thread, as
several controller instances (or consoles) on one PostgreSQL database do."""

from __future__ import annotations

import sqlite3
import threading

import pytest

from controller import sql_dialect
from controller.service_backend import ensure_schema, handle_request, queue_calls
from tests.services.conftest import NOW


def in_transaction(conn) -> bool:
    if sql_dialect.name(conn) == sql_dialect.POSTGRESQL:
        import psycopg

        return conn.raw.info.transaction_status != psycopg.pq.TransactionStatus.IDLE
    return conn.in_transaction


def take(conn, kiosk, counter="general", now=NOW):
    r = handle_request(conn, kiosk, {"service": "queue_ticket", "op": "take", "args": {"counter": counter}}, now)
    assert r["ok"], r
    return r["data"]


def test_call_next_is_per_site_in_issue_order_and_stores_called_at(db):
    _, conn = db
    a = take(conn, "k-n1")
    take(conn, "k-s1")
    b = take(conn, "k-n2", now=NOW + 5)
    first = queue_calls.call_next(conn, "north", now=NOW + 300, called_by="otto")
    assert first["number"] == a["number"] and first["called_at"] == NOW + 300 and first["wait_minutes"] == 5.0
    second = queue_calls.call_next(conn, "north", now=NOW + 400, called_by="otto")
    assert second["number"] == b["number"] and second["kiosk_id"] == "k-n2"
    with pytest.raises(queue_calls.QueueEmpty, match="north"):
        queue_calls.call_next(conn, "north", now=NOW + 500, called_by="otto")
    row = conn.execute("SELECT status, called_at, called_by FROM svc_tickets WHERE number=? AND kiosk_id='k-n1'",
                       (a["number"],)).fetchone()
    assert row == ("called", NOW + 300, "otto")
    assert queue_calls.call_next(conn, "south", now=NOW + 600, called_by="x", counter="general")["kiosk_id"] == "k-s1"


def test_refusals_name_what_was_wrong(db):
    _, conn = db
    with pytest.raises(queue_calls.UnknownSite):
        queue_calls.call_next(conn, "nowhere", now=NOW, called_by="otto")
    with pytest.raises(queue_calls.ServiceError, match="counter"):
        queue_calls.call_next(conn, "north", now=NOW, called_by="otto", counter="bank")
    take(conn, "k-n1", counter="social")
    with pytest.raises(queue_calls.QueueEmpty, match="general"):
        queue_calls.call_next(conn, "north", now=NOW, called_by="otto", counter="general")
    assert not in_transaction(conn)  # a refused call leaves no open transaction behind


def test_same_request_id_returns_the_same_ticket(db):
    _, conn = db
    take(conn, "k-n1")
    take(conn, "k-n1")
    one = queue_calls.call_next(conn, "north", now=NOW + 60, called_by="otto", request_ref="click-1")
    again = queue_calls.call_next(conn, "north", now=NOW + 61, called_by="otto", request_ref="click-1")
    assert again["number"] == one["number"] and again["repeated"] and not one["repeated"]
    assert conn.execute("SELECT COUNT(*) FROM svc_tickets WHERE status='waiting'").fetchone()[0] == 1


def test_concurrent_windows_never_call_the_same_ticket(db):
    connect, conn = db
    for _ in range(20):
        take(conn, "k-n1")
    called, errors = [], []

    def window(name):
        c = connect()
        try:
            while True:
                try:
                    called.append(queue_calls.call_next(c, "north", now=NOW + 60, called_by=name)["number"])
                except queue_calls.QueueEmpty:
                    return
        except Exception as exc:  # noqa: BLE001 - reported below
            errors.append(exc)
        finally:
            c.close()

    threads = [threading.Thread(target=window, args=(f"w{i}",)) for i in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    assert not errors and len(called) == 20 and len(set(called)) == 20


def test_estimate_uses_measured_recent_median_wait(db):
    _, conn = db
    for minutes in (30, 20, 10):  # issued 30, 20 and 10 minutes ago: A001-A003
        take(conn, "k-n2", now=NOW - minutes * 60)
    # No calls yet: the per-ticket estimate (three ahead, then four).
    assert take(conn, "k-n1")["wait_minutes"] == 3 * 6
    est = take(conn, "k-n1")
    assert est["wait_basis"] == "estimate" and est["wait_minutes"] == 4 * 6
    for _ in range(3):
        queue_calls.call_next(conn, "north", now=NOW, called_by="otto")  # A001-A003: waited 30, 20, 10 minutes
    waits = sorted(r[0] for r in conn.execute("SELECT (called_at - issued_at) / 60 FROM svc_tickets "
                                              "WHERE called_at IS NOT NULL"))
    assert waits == [10, 20, 30]
    got = take(conn, "k-n1", now=NOW + 1)
    assert got["wait_basis"] == "measured" and got["wait_minutes"] == 20
    # The south site has no measured waits: its own estimate.
    take(conn, "k-s1")
    assert take(conn, "k-s1")["wait_basis"] == "estimate"


def test_a_counter_is_called_by_number_even_if_a_later_number_carries_an_earlier_time(db):
    """Two instances: the one that numbers A002 read its clock a moment after the one that then
    waited for the queue lock and numbered A003. Number order decides, per counter; among
    counters, the head issued first."""
    _, conn = db
    take(conn, "k-n1", now=NOW)
    take(conn, "k-n2", now=NOW + 0.002)  # A002
    take(conn, "k-n1", now=NOW + 0.001)  # A003, its clock read before A002's commit
    take(conn, "k-n2", counter="social", now=NOW + 0.0015)  # B001
    assert queue_calls.site_queue(conn, "north", now=NOW)["counters"][0] == {"counter": "general", "waiting": 3,
                                                                          "next": "A001"}
    called = [queue_calls.call_next(conn, "north", now=NOW + 60, called_by="otto")["number"] for _ in range(4)]
    assert called == ["A001", "B001", "A002", "A003"]


def test_kiosk_side_call_op_records_called_at(db):
    _, conn = db
    take(conn, "k-n1")
    r = handle_request(conn, "k-n1", {"service": "queue_ticket", "op": "call", "args": {"counter": "general"}},
                       NOW + 120)
    assert r["ok"]
    assert conn.execute("SELECT called_at FROM svc_tickets").fetchone()[0] == NOW + 120


def test_old_ticket_table_gains_called_at_and_keeps_rows(tmp_path):
    conn = sqlite3.connect(tmp_path / "old.db")
    conn.execute("CREATE TABLE svc_tickets (id INTEGER PRIMARY KEY, kiosk_id TEXT NOT NULL, day TEXT NOT NULL, "
                 "counter TEXT NOT NULL, number TEXT NOT NULL, seq INTEGER NOT NULL, status TEXT NOT NULL DEFAULT "
                 "'waiting', issued_at REAL NOT NULL, UNIQUE(day, counter, seq))")
    conn.execute("INSERT INTO svc_tickets (kiosk_id, day, counter, number, seq, issued_at) "
                 "VALUES ('k', '2025-11-24', 'general', 'A001', 1, 1.0)")
    conn.commit()
    r = handle_request(conn, "k", {"service": "queue_ticket", "op": "call", "args": {"counter": "general"}}, NOW)
    assert r["ok"] and r["data"]["number"] == "A001"
    assert conn.execute("SELECT called_at FROM svc_tickets").fetchone()[0] == NOW
    conn.close()


def test_each_site_numbers_its_own_queue(db):
    _, conn = db
    north = [take(conn, "k-n1"), take(conn, "k-n2")]
    south = take(conn, "k-s1")
    assert [t["number"] for t in north] == ["A001", "A002"] and north[1]["ahead"] == 1
    assert south["number"] == "A001" and south["ahead"] == 0  # nobody ahead at the other centre
    # A staff terminal at the south site calls the south ticket, not the older north one.
    r = handle_request(conn, "k-s1", {"service": "queue_ticket", "op": "call", "args": {"counter": "general"}}, NOW)
    assert r["ok"] and r["data"]["number"] == "A001"
    assert conn.execute("SELECT kiosk_id FROM svc_tickets WHERE status='called'").fetchall() == [("k-s1",)]
    assert queue_calls.site_queue(conn, "north", now=NOW)["counters"][0] == {"counter": "general", "waiting": 2, "next": "A001"}


def test_tickets_of_the_fleet_wide_numbering_are_moved_to_their_sites(sqlite_db):
    _, conn = sqlite_db
    day = "2025-11-24"
    conn.execute("DROP TABLE svc_tickets")
    conn.execute("CREATE TABLE svc_tickets (id INTEGER PRIMARY KEY, kiosk_id TEXT NOT NULL, day TEXT NOT NULL, "
                 "counter TEXT NOT NULL, number TEXT NOT NULL, seq INTEGER NOT NULL, status TEXT NOT NULL DEFAULT "
                 "'waiting', issued_at REAL NOT NULL, called_at REAL, called_by TEXT, call_ref TEXT, "
                 "UNIQUE(day, counter, seq))")
    conn.executemany("INSERT INTO svc_tickets (kiosk_id, day, counter, number, seq, issued_at) VALUES (?,?,?,?,?,?)",
                     [("k-n1", day, "general", "A001", 1, NOW - 60), ("k-s1", day, "general", "A002", 2, NOW - 30),
                      ("k-gone", day, "general", "A003", 3, NOW - 10)])
    ensure_schema(conn)
    rows = conn.execute("SELECT kiosk_id, site, number, status FROM svc_tickets ORDER BY id").fetchall()
    assert rows == [("k-n1", "north", "A001", "waiting"), ("k-s1", "south", "A002", "waiting"),
                    ("k-gone", "", "A003", "waiting")]
    # Numbering goes on per site from what each site already issued today.
    assert take(conn, "k-n2")["number"] == "A002" and take(conn, "k-s1")["number"] == "A003"
    assert queue_calls.call_next(conn, "south", now=NOW, called_by="otto")["number"] == "A002"
    ensure_schema(conn)  # idempotent: nothing rebuilt twice
    assert conn.execute("SELECT COUNT(*) FROM svc_tickets").fetchone()[0] == 5


def test_concurrent_kiosks_never_get_the_same_number(db):
    connect, _ = db
    numbers, errors = [], []

    def kiosk(kiosk_id):
        c = connect()
        try:
            for _ in range(15):
                r = handle_request(c, kiosk_id, {"service": "queue_ticket", "op": "take",
                                                 "args": {"counter": "general"}}, NOW)
                (numbers if r["ok"] else errors).append(r.get("data", r))
        finally:
            c.close()
    threads = [threading.Thread(target=kiosk, args=(k,)) for k in ("k-n1", "k-n2", "k-n1")]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    assert sorted(n["number"] for n in numbers) == [f"A{i:03d}" for i in range(1, 46)]
