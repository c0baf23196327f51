"""Fixtures for the console tests: a fleet store with kiosks, accounts, an app and signed-in clients."""

from __future__ import annotations

import time
import warnings

import pytest

from controller.store import Store
from controller.web import console_reads
from controller.web.app import build_console, create_app

warnings.filterwarnings("ignore", message=".*httpx.*")
from starlette.testclient import TestClient  # noqa: E402

PASSWORDS = {"ada": "ada-admin-password", "otto": "otto-operator-pw", "vera": "vera-viewer-pass"}
ROLES = {"ada": "admin", "otto": "operator", "vera": "viewer"}


def seed(data_dir, n=30, now=None, database=""):
    """A small fleet: every status appears, across three sites (in ``database`` when given)."""
    now = now or time.time()
    store = Store(data_dir, database or None)
    recs = []
    for i in range(n):
        state = "offline" if i % 5 == 0 else "online"
        mode = "out_of_service" if i % 7 == 3 else "normal"
        devices = {"printer": {"state": "error", "detail": "paper_out", "required_action": "load paper"}} \
            if i % 6 == 1 else {"printer": {"state": "idle", "detail": "paper_ok", "required_action": ""}}
        recs.append({"kiosk_id": f"gd-{i:04d}", "site": f"site-{i % 3}", "state": state,
                     "reason": "lwt" if state == "offline" else "", "mode": mode, "devices": devices,
                     "last_seen": now - i, "state_since": now - 100 - i})
    store.upsert_kiosks(recs)
    if getattr(store.conn, "in_transaction", False):  # SQLite outside autocommit; PostgreSQL autocommits
        store.conn.commit()
    store.close()
    return recs


@pytest.fixture
def console_env(tmp_path, fleet_database):
    data = tmp_path / "controller-data"
    seed(data, database=fleet_database)
    console = build_console(data, database=fleet_database)
    for name, pw in PASSWORDS.items():
        console.accounts.add_user(name, ROLES[name], pw)
    yield console
    console.accounts.close()
    console_reads.close_all()


@pytest.fixture
def app(console_env):
    return create_app(console_env, start_poller=False)


def login(app, name):
    client = TestClient(app)
    client.__enter__()
    r = client.post("/login", data={"name": name, "password": PASSWORDS[name], "next": "/fleet"})
    assert r.status_code == 200, r.text[:300]
    csrf = r.text.split('name="csrf-token" content="')[1].split('"')[0]
    client.headers["x-csrf-token"] = csrf
    return client


@pytest.fixture
def clients(app):
    made = {name: login(app, name) for name in PASSWORDS}
    yield made
    for c in made.values():
        c.__exit__(None, None, None)


@pytest.fixture
def anon(app):
    with TestClient(app) as c:
        yield c
