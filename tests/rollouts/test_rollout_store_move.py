"""``kioskctl move-store`` takes the roll-outs, their kiosk rows, the releases registry and the
roll-out settings to PostgreSQL, every row checked; a roll-out store on PostgreSQL then goes on
from the moved state. Roll-outs still in an older controller's ``rollouts.sqlite3`` stop the move,
naming the file (the controller of this release moves them into the store first)."""

from __future__ import annotations

import json
import shutil
import sqlite3

import pytest

from controller import ctl, store_move
from controller import rollouts as RO
from controller.fleet_db import FleetDb
from controller.rollout_adopt import OLD_NAME
from controller.rollout_store import RolloutStore
from controller.store import StoreError
from tests.rollouts.test_rollout_decisions import REL, fleet, online, st


def test_move_store_takes_the_rollouts_to_postgresql(postgres_url, tmp_path, capsys):
    data = tmp_path / "ctl"
    FleetDb(data).open_migrated().close()
    store = RolloutStore(data)
    store.add_release({"component": "kiosk", "version": "2.0.0", "manifest_sha256": "a" * 64, "size": 10, "files": 1,
                       "published_by": "rel", "published_at": 5.5, "expires_at": 9e9})
    store.set_setting("releases_url", "https://ctl.example/releases")
    store.create(RO.plan(RO.new_rollout("r1", REL, created_by="a", now=0, canary=1, waves=[100],
                                         failure_budget=1.0), fleet(6), {}))
    r, sent = store.mutate("r1", lambda cur: RO.tick(cur, 1, online(cur)))
    store.close()

    # Roll-outs in an older controller's file are not in the store yet: refused, naming the file.
    shutil.copyfile(data / "controller.sqlite3", data / OLD_NAME)
    with pytest.raises(StoreError, match=f"{OLD_NAME} holds roll-outs not yet in the store"):
        store_move.move(data, postgres_url)
    (data / OLD_NAME).unlink()

    assert ctl.main(["move-store", "--data-dir", str(data), "--to", postgres_url, "--json"]) == 0
    moved = json.loads(capsys.readouterr().out)["moved"]
    assert {t: moved[t] for t in ("releases", "rollouts", "rollout_kiosks", "rollout_settings")} == {
        "releases": 1, "rollouts": 1, "rollout_kiosks": 6, "rollout_settings": 1}
    on_pg = RolloutStore(FleetDb(tmp_path / "ctl-pg", postgres_url))
    try:
        assert on_pg.get("r1") == r and on_pg.releases() == RolloutStore(data).releases()
        assert on_pg.setting("releases_url") == "https://ctl.example/releases"
        canary = sent[0][1]
        r2, more = on_pg.mutate("r1", lambda cur: RO.on_update_state(cur, canary, st("committed"), 5, online(cur)))
        assert r2["wave"] == 1 and len(more) == 5  # the conditional update goes on from the moved revision
    finally:
        on_pg.close()
    # The check notices changed rows of the roll-outs too (the 6 kiosk rows written on PostgreSQL since).
    on_sqlite = sqlite3.connect(data / "controller.sqlite3")
    pg = FleetDb(tmp_path / "x", postgres_url).connect()
    try:
        with pytest.raises(StoreError, match="table rollout_kiosks: 6 rows missing or changed"):
            store_move._check(on_sqlite, pg, "rollout_kiosks")
    finally:
        pg.close()
        on_sqlite.close()
