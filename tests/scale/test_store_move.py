"""``kioskctl move-store``: a controller's SQLite store, written by the real controller, moved to
PostgreSQL with every row checked, the console's accounts and sessions and the fleet's settings
with it; a controller started on PostgreSQL then shows the same fleet, and the operator signs in
and keeps the session opened before the move."""

from __future__ import annotations

import json

import pytest

from controller import ctl, enrolment_service, store_move, store_pg
from controller.fleet_db import FleetDb
from controller.server import Controller
from controller.store import StoreError, connect
from controller.web.accounts import Accounts
from tests.fleet.conftest import controller_config, wait_until


def _counts(conn) -> dict[str, int]:
    return {t: conn.execute(f"SELECT COUNT(*) FROM {t}").fetchone()[0] for t in store_move.TABLES}


def test_move_sqlite_store_to_postgresql_every_row_checked(broker, make_agent, postgres_url, tmp_path, capsys):
    data = tmp_path / "ctl"
    c = Controller(controller_config(broker, data))
    c.start()
    try:
        agent = make_agent("K-MOVE-1")
        ids = {agent.emit("load", {"n": n, "text": "中文 100% ?"}) for n in range(50)}
        wait_until(lambda: agent.journal.depth() == 0, 20, "events stored and acknowledged")
        c.config_set("fleet", {"volume": 60}, "ops")
        c.send_command("K-MOVE-1", "collect_diagnostics", {}, "ops")
        c.set_group("north", ["K-MOVE-1"], user="ops")
    finally:
        c.stop()
    accounts = Accounts(data)  # the console's own SQLite file, as on one machine
    accounts.add_user("ada", "admin", "ada-admin-password")
    token, ada = accounts.login("ada", "ada-admin-password")
    accounts.close()
    issued = enrolment_service.issue_token(connect(data), "site-1", now=1.0e9, issued_by="kioskctl")
    before = _counts(connect(data, readonly=True))
    assert before["events"] >= 51 and before["audit"] >= 2 and before["kiosks"] == 1

    assert ctl.main(["move-store", "--data-dir", str(data), "--to", postgres_url, "--json"]) == 0
    moved = json.loads(capsys.readouterr().out)["moved"]
    assert {t: moved[t] for t in store_move.TABLES} == before == _counts(store_pg.PgConnection(postgres_url))
    assert (moved["users"], moved["sessions"], moved["fleet_settings"], moved["enrol_tokens"]) == (1, 1, 1, 1)
    token_row = store_pg.PgConnection(postgres_url).execute("SELECT site FROM enrol_tokens WHERE token_hash = ?", (
        enrolment_service.token_hash(issued["token"]),)).fetchone()
    assert tuple(token_row) == ("site-1",)
    on_pg = Accounts(tmp_path / "console-pg", fleet_db=FleetDb(tmp_path / "console-pg", postgres_url))
    try:
        assert on_pg.session(token) == ada  # signed in before the move, still signed in
        assert on_pg.login("ada", "ada-admin-password")[1].role == "admin"
    finally:
        on_pg.close()

    # A second move into the same (now full) database is refused, naming why.
    with pytest.raises(StoreError, match="not empty"):
        store_move.move(data, postgres_url)
    # The check notices one changed row.
    pg = store_pg.PgConnection(postgres_url)
    pg.execute("UPDATE events SET body = '{}' WHERE id = ?", (sorted(ids)[0],))
    with pytest.raises(StoreError, match="table events: 1 rows missing or changed"):
        store_move._check(connect(data, readonly=True), pg, "events")
    pg.execute("UPDATE events SET body = ? WHERE id = ?",
               (connect(data, readonly=True).execute("SELECT body FROM events WHERE id = ?",
                                                     (sorted(ids)[0],)).fetchone()[0], sorted(ids)[0]))

    # The controller on PostgreSQL carries on from the moved state (new ids after the moved ones).
    c2 = Controller(controller_config(broker, tmp_path / "ctl-pg", database=postgres_url))
    c2.start()
    try:
        assert {e["id"] for e in c2.events(kiosk_id="K-MOVE-1", type="load", limit=100)["items"]} == ids
        assert c2.config_get("fleet")["body"] == {"volume": 60}
        assert c2.config_set("fleet", {"volume": 70}, "ops") == 2
        assert c2.audit_log(limit=100)["total"] == before["audit"] + 2  # ada's sign-in on PostgreSQL, the config
    finally:
        c2.stop()
