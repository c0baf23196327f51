"""The roll-out store in the fleet database, on SQLite and on PostgreSQL: one row per kiosk, and
roll-outs an older controller kept in ``rollouts.sqlite3`` (with every kiosk in one JSON record,
or already in rows) moved in, checked, the old file kept renamed."""

from __future__ import annotations

import json
import sqlite3

import pytest

from controller import rollouts as RO
from controller.fleet_db import FleetDb
from controller.rollout_adopt import OLD_NAME
from controller.rollout_store import RolloutStore
from controller.store import StoreError
from tests.conftest import BACKENDS
from tests.rollouts.test_rollout_decisions import REL, fleet, online, st

pytestmark = pytest.mark.parametrize("backend", BACKENDS)


@pytest.fixture
def db(tmp_path, fleet_database) -> FleetDb:
    return FleetDb(tmp_path, fleet_database)


def rows(db: FleetDb, sql: str) -> list[tuple]:
    conn = db.connect()
    try:
        return [tuple(r) for r in conn.execute(sql)]
    finally:
        conn.close()

# The layout before rollout_kiosks, as controller/rollout_store.py created it (every kiosk in ``body``).
OLD_SCHEMA = """
CREATE TABLE releases (component TEXT NOT NULL, version TEXT NOT NULL, manifest_sha256 TEXT NOT NULL,
    size INTEGER NOT NULL, files INTEGER NOT NULL, published_by TEXT NOT NULL, published_at REAL NOT NULL,
    expires_at REAL NOT NULL, PRIMARY KEY (component, version));
CREATE TABLE rollouts (id TEXT PRIMARY KEY, version TEXT NOT NULL, status TEXT NOT NULL, rev INTEGER NOT NULL,
    created_at REAL NOT NULL, body TEXT NOT NULL);
CREATE INDEX rollouts_status ON rollouts(status);
"""


def _old_record(rid: str, n: int) -> dict:
    r = RO.plan(RO.new_rollout(rid, REL, created_by="a", now=0, canary=1, waves=[100]), fleet(n), {})
    r, _ = RO.tick(r, 1, online(r))
    for k in r["kiosks"].values():  # records written before from_version, error_min and budgets existed
        k.pop("from_version")
    for name in ("error_min", "failure_budget", "accepted"):
        r.pop(name)
    return r


def _old_file(tmp_path, old: dict[str, dict]) -> None:
    db = sqlite3.connect(tmp_path / OLD_NAME)
    db.executescript(OLD_SCHEMA)
    for rid, r in old.items():
        db.execute("INSERT INTO rollouts VALUES (?,?,?,3,?,?)", (rid, r["version"], r["status"], 0, json.dumps(r)))
    db.execute("INSERT INTO releases VALUES ('kiosk', '2.0.0', ?, 10, 1, 'rel', 5.5, 99.0)", ("a" * 64,))
    db.commit()
    db.close()


def test_an_old_rollouts_file_is_moved_into_the_fleet_database_and_goes_on(tmp_path, db):
    old = {rid: _old_record(rid, n) for rid, n in (("r1", 5), ("r2", 3))}
    _old_file(tmp_path, old)

    store = RolloutStore(db)
    for rid, r in old.items():
        got = store.get(rid)
        assert {kid: {k: v for k, v in row.items() if k != "from_version"} for kid, row in got["kiosks"].items()} \
            == r["kiosks"]
        assert {k: v for k, v in got.items() if k != "kiosks"} == {k: v for k, v in r.items() if k != "kiosks"}
    assert store.release("2.0.0") == {"component": "kiosk", "version": "2.0.0", "manifest_sha256": "a" * 64,
                                      "size": 10, "files": 1, "published_by": "rel", "published_at": 5.5,
                                      "expires_at": 99.0}
    assert all("kiosks" not in json.loads(b) for (b,) in rows(db, "SELECT body FROM rollouts"))
    assert rows(db, "SELECT count(*) FROM rollout_kiosks") == [(8,)]
    assert rows(db, "SELECT rev FROM rollouts WHERE id = 'r1'") == [(3,)]  # revisions kept
    assert not (tmp_path / OLD_NAME).exists()
    kept = sqlite3.connect(tmp_path / (OLD_NAME + ".moved"))  # kept, renamed, with every row
    assert kept.execute("SELECT count(*) FROM rollouts").fetchone()[0] == 2
    kept.close()
    # Opening it again changes nothing; the moved roll-out goes on (a record without error_min: 1).
    RolloutStore(db).close()
    assert rows(db, "SELECT count(*) FROM rollout_kiosks") == [(8,)]
    canary = next(kid for kid, k in old["r1"]["kiosks"].items() if k["state"] == "sent")
    r, effects = store.mutate("r1", lambda cur: RO.on_update_state(cur, canary, st("committed"), 5, online(cur)))
    assert r["wave"] == 1 and len(effects) == 4 and store.get("r1")["kiosks"][canary]["state"] == "committed"
    store.close()


def test_a_row_that_differs_from_the_fleet_databases_stops_the_move_and_keeps_the_file(tmp_path, db):
    first = RolloutStore(db)
    first.create(RO.plan(RO.new_rollout("r1", REL, created_by="someone else", now=0, canary=0, waves=[100]),
                         fleet(2), {}))
    first.close()
    _old_file(tmp_path, {"r1": _old_record("r1", 5), "r2": _old_record("r2", 3)})
    with pytest.raises(StoreError, match=r"rollouts \('r1',\) differs from the row already there"):
        RolloutStore(db)
    assert (tmp_path / OLD_NAME).exists() and not (tmp_path / (OLD_NAME + ".moved")).exists()
    assert rows(db, "SELECT id FROM rollouts") == [("r1",)]  # nothing of the file moved, r1 not overwritten
    assert rows(db, "SELECT count(*) FROM releases") == [(0,)]


def test_a_kiosk_state_writes_its_own_row_only(db):
    store = RolloutStore(db)
    r = RO.plan(RO.new_rollout("r1", REL, created_by="a", now=0, canary=0, waves=[100], max_in_flight=3,
                               failure_budget=1.0),
                fleet(50, release="1.2.0"), {})
    store.create(r)
    r, effects = store.mutate("r1", lambda cur: RO.tick(cur, 1, online(cur)))
    assert len(effects) == 3
    kid = effects[0][1]
    r, _ = store.mutate("r1", lambda cur: RO.on_update_state(cur, kid, st("downloading"), 7, online(cur)))
    got = rows(db, "SELECT kiosk_id, state, from_version, updated_at FROM rollout_kiosks WHERE rollout_id = 'r1'")
    assert len(got) == 50 and {v for _, _, v, _ in got} == {"1.2.0"}
    assert [(k, s) for k, s, _, t in got if t == 7] == [(kid, "downloading")]  # the other 49 rows untouched
    assert store.get("r1") == r
    assert store.kiosk_states() == [("running", "downloading", 1), ("running", "pending", 47), ("running", "sent", 2)]
    assert store.open_waves() == [("r1", 0, "downloading", 1), ("r1", 0, "pending", 47), ("r1", 0, "sent", 2)]
    assert store.status_counts() == {"running": 1} and store.waves_started() == 1
    store.close()


def test_what_another_writer_changed_is_read_again(db):
    """The record a store keeps between its own writes is used only while the revision is its own."""
    a, b = RolloutStore(db), RolloutStore(db)  # the controller and kioskctl, say (or two instances)
    r = RO.plan(RO.new_rollout("r1", REL, created_by="a", now=0, canary=0, waves=[100], max_in_flight=2,
                               failure_budget=1.0),
                fleet(5), {})
    a.create(r)
    _, eff = a.mutate("r1", lambda cur: RO.tick(cur, 1, online(cur)))
    kid = eff[0][1]
    assert b.get("r1")["kiosks"][kid]["state"] == "sent"
    b.mutate("r1", lambda cur: RO.on_update_state(cur, kid, st("committed"), 2, online(cur)))
    assert a.get("r1")["kiosks"][kid]["state"] == "committed"
    got = a.get("r1")
    got["kiosks"][kid]["state"] = "scribbled"  # a caller's copy: the kept record is not touched
    assert a.get("r1")["kiosks"][kid]["state"] == "committed"
    r2, _ = a.mutate("r1", lambda cur: (RO.pause(cur, "field report"), []))
    assert b.get("r1")["status"] == "paused" and b.get("r1") == r2
    a.close()
    b.close()


def test_a_lost_postgresql_connection_is_opened_again(db, backend):
    if backend != "postgresql":
        pytest.skip("a SQLite file has no connection to lose")
    store = RolloutStore(db)
    store.create(RO.plan(RO.new_rollout("r1", REL, created_by="a", now=0, canary=0, waves=[100]), fleet(3), {}))
    admin = db.connect()
    try:  # what a restart of PostgreSQL does to the store's connection; the second argument waits
        # (up to 10 s) until each backend has ended, so its goodbye is on the store's socket before
        # the store's next statement (without it that statement could race the goodbye: CI once)
        admin.execute("SELECT pg_terminate_backend(pid, 10000) FROM pg_stat_activity WHERE pid <> pg_backend_pid()"
                      " AND datname = current_database()").fetchall()
    finally:
        admin.close()
    # The connection reconnects by itself (controller.store_pg) and the store goes on.
    assert store.revisions() == {"r1": 0}
    store.reopen()  # the roll-out job's fallback when a step still fails on a lost connection
    assert store.revisions() == {"r1": 0}
    store.close()
