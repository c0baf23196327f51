"""The roll-out store's layout: one row per kiosk, and the migration from one JSON record per roll-out."""

from __future__ import annotations

import json
import sqlite3

from controller import rollouts as RO
from controller.rollout_store import DB_NAME, RolloutStore
from tests.rollouts.test_rollout_decisions import REL, fleet, online, st

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


def test_an_existing_database_is_migrated_to_kiosk_rows_and_goes_on(tmp_path):
    db = sqlite3.connect(tmp_path / DB_NAME)
    db.executescript(OLD_SCHEMA)
    old = {rid: _old_record(rid, n) for rid, n in (("r1", 5), ("r2", 3))}
    for rid, r in old.items():
        db.execute("INSERT INTO rollouts VALUES (?,?,?,3,?,?)", (rid, r["version"], r["status"], 0, json.dumps(r)))
    db.commit()
    db.close()

    store = RolloutStore(tmp_path)
    for rid, r in old.items():
        got = store.get(rid)
        assert {kid: {k: v for k, v in row.items() if k != "from_version"} for kid, row in got["kiosks"].items()} \
            == r["kiosks"]
        assert {k: v for k, v in got.items() if k != "kiosks"} == {k: v for k, v in r.items() if k != "kiosks"}
    raw = sqlite3.connect(tmp_path / DB_NAME)
    assert all("kiosks" not in json.loads(b) for (b,) in raw.execute("SELECT body FROM rollouts"))
    assert raw.execute("SELECT count(*) FROM rollout_kiosks").fetchone()[0] == 8
    assert raw.execute("SELECT rev FROM rollouts WHERE id = 'r1'").fetchone()[0] == 3  # revisions kept
    # Opening it again changes nothing; the migrated roll-out goes on (a record without error_min: 1).
    RolloutStore(tmp_path)
    assert raw.execute("SELECT count(*) FROM rollout_kiosks").fetchone()[0] == 8
    canary = next(kid for kid, k in old["r1"]["kiosks"].items() if k["state"] == "sent")
    r, effects = store.mutate("r1", lambda cur: RO.on_update_state(cur, canary, st("committed"), 5, online(cur)))
    assert r["wave"] == 1 and len(effects) == 4 and store.get("r1")["kiosks"][canary]["state"] == "committed"


def test_a_kiosk_state_writes_its_own_row_only(tmp_path):
    store = RolloutStore(tmp_path)
    r = RO.plan(RO.new_rollout("r1", REL, created_by="a", now=0, canary=0, waves=[100], max_in_flight=3,
                               failure_budget=1.0),
                fleet(50, release="1.2.0"), {})
    store.create(r)
    r, effects = store.mutate("r1", lambda cur: RO.tick(cur, 1, online(cur)))
    assert len(effects) == 3
    kid = effects[0][1]
    r, _ = store.mutate("r1", lambda cur: RO.on_update_state(cur, kid, st("downloading"), 7, online(cur)))
    rows = sqlite3.connect(tmp_path / DB_NAME).execute(
        "SELECT kiosk_id, state, from_version, updated_at FROM rollout_kiosks WHERE rollout_id = 'r1'").fetchall()
    assert len(rows) == 50 and {v for _, _, v, _ in rows} == {"1.2.0"}
    assert [(k, s) for k, s, _, t in rows if t == 7] == [(kid, "downloading")]  # the other 49 rows untouched
    assert store.get("r1") == r
    assert store.kiosk_states() == [("running", "downloading", 1), ("running", "pending", 47), ("running", "sent", 2)]
    assert store.open_waves() == [("r1", 0, "downloading", 1), ("r1", 0, "pending", 47), ("r1", 0, "sent", 2)]
    assert store.status_counts() == {"running": 1} and store.waves_started() == 1


def test_what_another_writer_changed_is_read_again(tmp_path):
    """The record a store keeps between its own writes is used only while the revision is its own."""
    a, b = RolloutStore(tmp_path), RolloutStore(tmp_path)  # the controller and kioskctl, say
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
