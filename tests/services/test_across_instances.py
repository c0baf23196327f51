"""What several controller instances must not do twice, each on a connection of its own at the same
moment (threads here, processes in production), on both backends of the fleet database: book an
appointment slot beyond its capacity, or open two check-ins for one volunteer."""

from __future__ import annotations

from controller.service_backend import handle_request
from controller.service_backend.operations import SLOT_CAPACITY
from tests.services.conftest import NOW
from tests.support.together import at_once


def _at_once(connect, bodies: list[tuple[str, dict]]) -> list[dict]:
    """Each (kiosk, body) answered on its own connection, all released together."""
    def opened(body: tuple[str, dict]) -> tuple:
        return connect(), body  # on the call's own thread (an SQLite connection stays on its thread)

    def one(job: tuple) -> dict:
        conn, (kiosk, request) = job
        try:
            return handle_request(conn, kiosk, request, NOW)
        finally:
            conn.close()

    return at_once(one, bodies, prepare=opened)


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
