"""``kioskctl move-store`` moves the residents' service backend too: tickets, appointments,
certificates, notices, feedback and its handling, ratings and volunteer hours written by the real
controller's service thread for a real kiosk agent, copied to PostgreSQL with every row checked;
the controller started on PostgreSQL then numbers today's queue on from where it was. And the
standalone service host on PostgreSQL."""

from __future__ import annotations

import json
import sqlite3
import sys

import pytest

from contract import services, topics
from controller import ctl, pg_parts, sql_dialect, store_move, store_pg
from controller.fleet_db import FleetDb
from controller.store import DB_NAME, Store, StoreError, connect
from controller.web import notices, resident_requests, servicedb
from kiosk_ui.service_client import ServiceRefused
from kiosk_ui.service_client.over_mqtt import MqttServiceClient
from tests.fleet.conftest import Raw, wait_until
from tests.support.processes import Proc

REF = "0123456789abcdef0123456789abcdef"


def _counts(conn) -> dict[str, int]:
    return {t: conn.execute(f"SELECT COUNT(*) FROM {t}").fetchone()[0] for t in pg_parts.SERVICE_BACKEND_TABLES}


def _resident_uses_every_service(svc: MqttServiceClient) -> list[str]:
    numbers = [svc.call("queue_ticket", "take", {"counter": "general"})["number"] for _ in range(3)]
    slot = svc.call("appointment", "slots", {"site": "centre"})["slots"][0]["id"]
    svc.call("appointment", "book", {"site": "centre", "slot": slot, "resident_ref": REF})
    svc.call("certificate", "issue", {"kind": "residence", "holder_name": "张三", "id_masked": "4401**********1234"})
    svc.call("volunteer", "check_in", {"resident_ref": REF})
    svc.call("feedback", "submit", {"category": "safety", "urgency": "urgent", "phone": "13812345678"})
    svc.call("rating", "submit", {"service": "queue_ticket", "stars": 4, "tags": ["fast"]})
    return numbers


def test_service_tables_move_to_postgresql_and_the_queue_goes_on(make_controller, make_agent, postgres_url, tmp_path,
                                                                  capsys):
    on_sqlite = make_controller("ctl")
    data = on_sqlite.config.data_dir
    svc = MqttServiceClient(make_agent("K-SVC-MOVE"))
    wait_until(lambda: svc.online, 10, "controller seen online through the agent")
    numbers = _resident_uses_every_service(svc)
    on_sqlite.stop()
    assert numbers == ["A001", "A002", "A003"]
    conn = servicedb.connect(data)  # the console's side: a notice published, a request handled
    try:
        notices.publish(data, "water", {"zh-CN": "停水通知", "zh-HK": "停水通知", "en": "Water off"}, ["all"], 1.0e9)
        ref = conn.execute("SELECT ref FROM svc_feedback").fetchone()[0]
        resident_requests.mark_handled(conn, ref, by="otto", note="called back", now=1.0e9)
    finally:
        conn.close()
    before = _counts(connect(data, readonly=True))
    assert all(before[t] for t in pg_parts.SERVICE_BACKEND_TABLES if t != "svc_ss_accounts"), before

    assert ctl.main(["move-store", "--data-dir", str(data), "--to", postgres_url, "--json"]) == 0
    moved = json.loads(capsys.readouterr().out)["moved"]
    assert {t: moved.get(t, 0) for t in pg_parts.SERVICE_BACKEND_TABLES} == before
    assert _counts(store_pg.PgConnection(postgres_url)) == before

    # The check notices one changed ticket.
    pg = store_pg.PgConnection(postgres_url)
    pg.execute("UPDATE svc_tickets SET number = 'A999' WHERE number = 'A002'")
    with pytest.raises(StoreError, match="table svc_tickets: 1 rows missing or changed"):
        store_move._check(connect(data, readonly=True), pg, "svc_tickets")
    pg.execute("UPDATE svc_tickets SET number = 'A002' WHERE number = 'A999'")
    pg.close()

    # The controller on PostgreSQL goes on: the next ticket at the kiosk's site is A004, the ids
    # PostgreSQL counts start after the moved ones, the notice and the handling are there.
    c2 = make_controller("ctl-pg", database=postgres_url)
    try:
        wait_until(lambda: svc.online, 10, "controller on PostgreSQL seen online")
        assert svc.call("queue_ticket", "take", {"counter": "general"})["number"] == "A004"
        assert svc.call("rating", "submit", {"service": "queue_ticket", "stars": 5}) == {}
        assert "water" in {n["id"] for n in svc.call("notices", "list", {"group": "all"})["notices"]}
        with pytest.raises(ServiceRefused) as err:  # checked in before the move, still checked in
            svc.call("volunteer", "check_in", {"resident_ref": REF})
        assert err.value.code == "already_checked_in"
    finally:
        c2.stop()
    db = FleetDb(tmp_path / "ctl-pg", postgres_url)
    q = servicedb.run(db, resident_requests.list_requests, resident_requests.Filters(status="all"), now=1.0e9,
                      keep_days=30)
    assert [(i["handled_by"], i["note"]) for i in q["items"]] == [("otto", "called back")]
    pg = servicedb.open_db(db)
    ids = [r[0] for r in pg.execute("SELECT id FROM svc_ratings ORDER BY id")]
    pg.close()
    assert len(ids) == 2 and ids[1] > ids[0]


def test_standalone_service_host_on_postgresql_numbers_the_kiosks_site_queue(broker, postgres_url, tmp_path, procs):
    """``python -m controller.service_backend --database URL``: the backend on its own, on the fleet
    database in PostgreSQL, numbers a kiosk's ticket in the queue of the site the registry has."""
    store = Store(tmp_path / "svc", postgres_url)
    with store.tx() as s:
        s.upsert_kiosks([{"kiosk_id": "K-ALONE", "site": "centre-west", "state": "online", "last_seen": 1.0,
                          "state_since": 1.0}])
    store.close()
    host = Proc([sys.executable, "-m", "controller.service_backend", "--broker", broker.url, "--data-dir",
                 str(tmp_path / "svc"), "--database", postgres_url])
    procs.append(host)
    host.wait_for("READY services", timeout=30)
    kiosk = Raw(broker, "K-ALONE")
    try:
        kiosk.subscribe(topics.topic("K-ALONE", "svc/response"))
        for _ in range(2):
            # The bytes the kiosk's service client sends (kiosk_ui.service_client.over_mqtt).
            kiosk.publish(topics.topic("K-ALONE", "svc/request"),
                          topics.encode(services.request("queue_ticket", "take", {"counter": "social"})))
        wait_until(lambda: len(kiosk.messages) == 2, 15, "two answers")
    finally:
        kiosk.close()
    numbers = sorted(services.parse_response(json.loads(p)).data["number"] for _, p in kiosk.messages)
    assert numbers == ["B001", "B002"]
    pg = store_pg.PgConnection(postgres_url)
    try:
        assert [tuple(r) for r in pg.execute("SELECT site, number FROM svc_tickets ORDER BY id")] == [
            ("centre-west", "B001"), ("centre-west", "B002")]
    finally:
        pg.close()


def test_tickets_of_an_older_release_are_not_moved_without_their_sites(postgres_url, tmp_path):
    """Tickets numbered fleet-wide (no site column) would land in no site's queue: the move refuses,
    saying what to do, and writes nothing."""
    Store(tmp_path).close()
    old = sqlite3.connect(tmp_path / DB_NAME)
    old.execute("CREATE TABLE svc_tickets (id INTEGER PRIMARY KEY, kiosk_id TEXT NOT NULL, day TEXT NOT NULL, "
                "counter TEXT NOT NULL, number TEXT NOT NULL, seq INTEGER NOT NULL, status TEXT NOT NULL DEFAULT "
                "'waiting', issued_at REAL NOT NULL, UNIQUE(day, counter, seq))")
    old.commit()
    old.close()
    with pytest.raises(StoreError, match="older release"):
        store_move.move(tmp_path, postgres_url)
    pg = store_pg.PgConnection(postgres_url)
    try:
        assert "kiosks" not in sql_dialect.tables(pg)
    finally:
        pg.close()
