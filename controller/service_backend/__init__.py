"""The reference resident-service backend behind ``svc/request`` / ``svc/response``.

``handle_request(conn, kiosk_id, body, now)`` answers one request body (read with
:func:`contract.services.parse_request`) with the contract's answer or refusal
(:mod:`contract.services`); it never raises for bad input. Its tables are
created by ``ensure_schema(conn)`` in the controller database.
"""

from __future__ import annotations

import logging
import sqlite3
from typing import Any

from contract import services
from controller.service_backend.operations import OPS, ServiceError, kiosk_site
from controller.service_backend.tables import ensure_schema
from foundation.errors import RemoteProtocolError

__all__ = ["ServiceError", "ensure_schema", "forget_phones", "handle_request", "kiosk_site"]

log = logging.getLogger(__name__)


def _in_transaction(conn: sqlite3.Connection, fn, kiosk_id: str, args: dict[str, Any], now: float) -> Any:
    """One write transaction per request, taken before the first read (BEGIN IMMEDIATE): a refused
    request leaves nothing behind, and two requests never read the same next ticket number. Works
    on autocommit connections too (``isolation_level=None``)."""
    with conn:
        if not conn.in_transaction:
            conn.execute("BEGIN IMMEDIATE")
        return fn(conn, kiosk_id, args, now)


def handle_request(conn: sqlite3.Connection, kiosk_id: str, body: dict[str, Any], now: float) -> dict[str, Any]:
    try:
        request = services.parse_request(body)
    except RemoteProtocolError as exc:
        return services.refusal("bad_request", str(exc))
    service, op, args = request.service, request.op, request.args
    fn = OPS.get((service, op))
    if fn is None:
        known = ", ".join(f"{s}.{o}" for s, o in OPS)
        return services.refusal("unknown_op", f"unknown service/op {service!r}.{op!r}; known: {known}")
    try:
        try:
            data = _in_transaction(conn, fn, kiosk_id, args, now)
        except sqlite3.OperationalError as exc:
            if "no such table: svc_" not in str(exc) and "no such column" not in str(exc):
                raise
            # First request on a database the controller made without our tables, or made by an
            # older backend without the newer columns: bring the schema up to date and retry.
            ensure_schema(conn)
            data = _in_transaction(conn, fn, kiosk_id, args, now)
    except ServiceError as exc:
        log.info("service request refused", extra={"fields": {"kiosk": kiosk_id, "op": f"{service}.{op}",
                                                                "code": exc.code}})
        return services.refusal(exc.code, str(exc))
    except sqlite3.Error as exc:
        log.error("service store failed", extra={"fields": {"op": f"{service}.{op}", "why": str(exc)[:200]}})
        return services.refusal("backend_unavailable", "the service store failed; try again")
    log.info("service request", extra={"fields": {"kiosk": kiosk_id, "op": f"{service}.{op}"}})
    return services.answer(data)


def forget_phones(conn: sqlite3.Connection, before: float) -> None:
    """Blank the call-back numbers of feedback registered before ``before``: residents typed them to
    be called back, and once that time is over nobody needs them (the request itself stays)."""
    try:
        conn.execute("UPDATE svc_feedback SET phone='' WHERE phone!='' AND created < ?", (before,))
    except sqlite3.OperationalError as exc:
        if "no such table: svc_" not in str(exc) and "no such column" not in str(exc):
            raise  # else no request has come since the tables (or the column) were made: nothing to forget
