"""A short-lived read-write connection to the fleet database for the console's service work.

The queue page calls tickets, the requests page records handling and the notices page publishes
through such a connection (the console's shared read-only connection cannot write), on the
service backend's tables wherever the fleet store is (``controller.fleet_db``): the SQLite file in
the data folder, where SQLite serialises these short transactions with the controller's own
writes (``timeout`` waits for a lock instead of failing), or PostgreSQL, where every console and
controller instance sees the same queue and the backend's advisory locks keep calls apart.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from controller import sql_dialect
from controller.fleet_db import FleetDb
from controller.service_backend import tables
from controller.service_backend.operations import ServiceError
from controller.store import StoreError
from controller.web.auth import HTTPProblem

# ServiceError codes -> HTTP status: the queue's, then the residents' requests'.
STATUS = {"queue_empty": 409, "unknown_site": 404, "bad_request": 422,
          "unknown_request": 404, "no_number": 409, "number_gone": 410}


def open_db(where: FleetDb | Path | str) -> Any:
    """An autocommit read-write connection to the fleet database; 503 when there is none yet."""
    db = FleetDb.of(where)
    if not db.exists():
        raise HTTPProblem(503, f"no controller database at {db.describe()}")
    return tables.connect(db)


def connect(where: FleetDb | Path | str) -> Any:
    """An autocommit connection with the service tables up to date; 503 before the controller ran
    (no database, or no fleet registry in it)."""
    try:
        return tables.open_tables(FleetDb.of(where))
    except StoreError as exc:
        raise HTTPProblem(503, str(exc)) from None


def run(where: FleetDb | Path | str, fn, *args: Any, **kwargs: Any) -> Any:
    """``fn(conn, *args, **kwargs)`` on a fresh connection; refusals become HTTP answers."""
    conn = connect(where)
    try:
        return fn(conn, *args, **kwargs)
    except ServiceError as exc:
        raise HTTPProblem(STATUS.get(exc.code, 422), str(exc)) from None
    except sql_dialect.unavailable_errors() as exc:  # locked past busy_timeout, disk trouble, connection lost
        raise HTTPProblem(503, f"the service store cannot answer now: {exc}") from None
    finally:
        conn.close()
