"""A short-lived read-write connection to the controller database for the console's service work.

The queue page calls tickets and the requests page records handling through such a connection
(the console's shared read-only connection cannot write). SQLite serialises these short
transactions with the controller's own writes; ``timeout`` waits for a lock instead of failing.
"""

from __future__ import annotations

import sqlite3
from pathlib import Path
from typing import Any

from controller.service_backend import ensure_schema
from controller.service_backend.operations import ServiceError
from controller.store import DB_NAME
from controller.web.auth import HTTPProblem

# ServiceError codes -> HTTP status: the queue's, then the residents' requests'.
STATUS = {"queue_empty": 409, "unknown_site": 404, "bad_request": 422,
          "unknown_request": 404, "no_number": 409, "number_gone": 410}


def connect(data_dir: Path) -> sqlite3.Connection:
    """An autocommit connection with the service tables up to date; 503 before the controller ran."""
    path = Path(data_dir) / DB_NAME
    if not path.exists():
        raise HTTPProblem(503, f"no controller database at {path}")
    conn = sqlite3.connect(path, timeout=10, isolation_level=None)
    try:
        if conn.execute("SELECT 1 FROM sqlite_master WHERE name='kiosks'").fetchone() is None:
            raise HTTPProblem(503, "the fleet registry has not been created yet (start kiosk-controller once)")
        ensure_schema(conn)  # cheap when up to date; adds newer columns to an older database
    except BaseException:
        conn.close()
        raise
    return conn


def run(data_dir: Path, fn, *args: Any, **kwargs: Any) -> Any:
    """``fn(conn, *args, **kwargs)`` on a fresh connection; refusals become HTTP answers."""
    conn = connect(data_dir)
    try:
        return fn(conn, *args, **kwargs)
    except ServiceError as exc:
        raise HTTPProblem(STATUS.get(exc.code, 422), str(exc)) from None
    except sqlite3.OperationalError as exc:  # locked past busy_timeout, disk trouble
        raise HTTPProblem(503, f"the service store cannot answer now: {exc}") from None
    finally:
        conn.close()
