"""The reference resident-service backend behind ``svc/request`` / ``svc/response``.

``handle_request(conn, kiosk_id, body, now)`` answers one request body (read with
:func:`contract.services.parse_request`) with the contract's answer or refusal
(:mod:`contract.services`); it never raises for bad input. Its tables are
created by ``ensure_schema(conn)`` in the fleet database: ``conn`` is a connection to the SQLite
store or to PostgreSQL (``controller.fleet_db``), the SQL is the same on both.
"""

from __future__ import annotations

import logging
from typing import Any

from contract import services
from controller import sql_dialect
from controller.service_backend.operations import OPS, ServiceError, kiosk_site
from controller.service_backend.tables import ensure_schema
from foundation.errors import RemoteProtocolError

__all__ = ["ServiceError", "ensure_schema", "forget_phones", "handle_request", "kiosk_site"]

log = logging.getLogger(__name__)


def _in_transaction(conn: Any, fn, kiosk_id: str, args: dict[str, Any], now: float) -> Any:
    """One write transaction per request: a refused request leaves nothing behind. SQLite: taken
    before the first read (BEGIN IMMEDIATE), so two requests never read the same next ticket
    number; works on autocommit connections too (``isolation_level=None``). PostgreSQL: the ops
    take an advisory lock on what they number or fill (``sql_dialect.lock``) before reading it,
    so controller instances answering at once wait for each other there."""
    if sql_dialect.name(conn) == sql_dialect.POSTGRESQL:
        with conn.raw.transaction():
            return fn(conn, kiosk_id, args, now)
    with conn:
        if not conn.in_transaction:
            conn.execute("BEGIN IMMEDIATE")
        return fn(conn, kiosk_id, args, now)


def handle_request(conn: Any, kiosk_id: str, body: dict[str, Any], now: float) -> dict[str, Any]:
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
        except sql_dialect.all_errors() as exc:
            if not sql_dialect.missing_schema(exc):
                raise
            # First request on a database the controller made without our tables, or made by an
            # older backend without the newer columns: bring the schema up to date and retry.
            ensure_schema(conn)
            data = _in_transaction(conn, fn, kiosk_id, args, now)
    except ServiceError as exc:
        log.info("service request refused", extra={"fields": {"kiosk": kiosk_id, "op": f"{service}.{op}",
                                                                "code": exc.code}})
        return services.refusal(exc.code, str(exc))
    except sql_dialect.all_errors() as exc:
        log.error("service store failed", extra={"fields": {"op": f"{service}.{op}", "why": str(exc)[:200]}})
        return services.refusal("backend_unavailable", "the service store failed; try again")
    log.info("service request", extra={"fields": {"kiosk": kiosk_id, "op": f"{service}.{op}"}})
    return services.answer(data)


def forget_phones(conn: Any, before: float) -> None:
    """Blank the call-back numbers of feedback registered before ``before``: residents typed them to
    be called back, and once that time is over nobody needs them (the request itself stays).
    (On PostgreSQL the controller creates the tables at its start, so the table is there.)"""
    try:
        conn.execute("UPDATE svc_feedback SET phone='' WHERE phone!='' AND created < ?", (before,))
    except sql_dialect.all_errors() as exc:
        if not sql_dialect.missing_schema(exc):
            raise  # else no request has come since the tables (or the column) were made: nothing to forget
