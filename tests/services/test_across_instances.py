"""What several controller instances must not do twice, each on a connection of its own at the same
moment (threads here, processes in production), on both backends of the fleet database: book an
appointment slot beyond its capacity, or open two check-ins for one volunteer."""

from __future__ import annotations

import threading

from controller.service_backend import handle_request
from controller.service_backend.operations import SLOT_CAPACITY
from tests.services.conftest import NOW


def _at_once(connect, bodies: list[tuple[str, dict]]) -> list[dict]:
    """Each (kiosk, body) answered on its own connection, all released together."""
    replies: list[dict] = [{}] * len(bodies)
    start = threading.Barrier(len(bodies))

    def one(i: int) -> None:
        conn = connect()
        try:
            start.wait(10)
            replies[i] = handle_request(conn, bodies[i][0], bodies[i][1], NOW)
        finally:
            conn.close()

    threads = [threading.Thread(target=one, args=(i,)) for i in range(len(bodies))]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    return replies


def test_a_slot_is_never_booked_beyond_its_capacity(db):
    connect, conn = db
    slot = handle_request(conn, "k-n1", {"service": "appointment", "op": "slots", "args": {"site": "centre"}},
                          NOW)["data"]["slots"][0]["id"]
    residents = [f"{i:032x}" for i in range(SLOT_CAPACITY + 4)]
    replies = _at_once(connect, [("k-n1" if i % 2 else "k-s1", {"service": "appointment", "op": "book", "args": {
        "site": "centre", "slot": slot, "resident_ref": ref}}) for i, ref in enumerate(residents)])
    assert sum(r["ok"] for r in replies) == SLOT_CAPACITY, replies
    assert {r["error"] for r in replies if not r["ok"]} == {"slot_full"}
    booked = conn.execute("SELECT COUNT(*) FROM svc_appointments WHERE slot = ?", (slot,)).fetchone()[0]
    assert booked == SLOT_CAPACITY


def test_one_volunteer_checks_in_once_from_two_kiosks_at_once(db):
    connect, _ = db
    body = {"service": "volunteer", "op": "check_in", "args": {"resident_ref": "ab" * 16}}
    replies = _at_once(connect, [("k-n1", body), ("k-s1", body), ("k-n2", body)])
    assert sorted(r.get("error", "ok") for r in replies) == ["already_checked_in", "already_checked_in", "ok"]
