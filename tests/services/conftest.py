"""Fixtures for the service backend tests: a fleet registry with three kiosks at two sites, in the
SQLite store or a PostgreSQL fleet database, and how to open more connections to it (one per
thread, as several controller instances or consoles have)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from controller.fleet_db import FleetDb
from controller.service_backend import ensure_schema, tables
from controller.store import Store
from tests.conftest import BACKENDS

NOW = 1_763_956_800.0  # 2025-11-24 12:00 in Shanghai: waits in the tests stay within one day


def _opened(tmp_path, url: str) -> tuple[Callable[[], Any], Any]:
    """The fleet store with its kiosks; returns how to open another autocommit connection, and one
    with the service tables made."""
    store = Store(tmp_path, url or None)
    with store.tx() as s:
        s.upsert_kiosks([{"kiosk_id": k, "site": site, "state": "online", "last_seen": NOW, "state_since": NOW}
                         for k, site in (("k-n1", "north"), ("k-n2", "north"), ("k-s1", "south"))])
    store.close()
    db = FleetDb(tmp_path, url)
    conn = tables.connect(db)
    ensure_schema(conn)
    return lambda: tables.connect(db), conn


@pytest.fixture(params=BACKENDS)
def db(request, tmp_path):
    """``(open_connection, conn)`` on the SQLite store or a PostgreSQL fleet database."""
    connect, conn = _opened(tmp_path, request.getfixturevalue("postgres_url") if request.param == "postgresql" else "")
    yield connect, conn
    conn.close()


@pytest.fixture
def sqlite_db(tmp_path):
    """The SQLite store only: its own upgrades of tables made by older releases."""
    connect, conn = _opened(tmp_path, "")
    yield connect, conn
    conn.close()
