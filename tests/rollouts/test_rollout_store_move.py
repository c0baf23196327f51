"""``kioskctl move-store`` takes the roll-outs, their kiosk rows, the releases registry with the
published bundles' files, and the roll-out settings to PostgreSQL, every row and file checked; a roll-out store on PostgreSQL then goes on
from the moved state. Roll-outs still in an older controller's ``rollouts.sqlite3`` stop the move,
naming the file (the controller of this release moves them into the store first)."""

from __future__ import annotations

import json
import os
import shutil
import sqlite3
import time

import pytest

from contract import release as R
from controller import ctl, release_registry, sql_dialect, store_move
from controller import rollouts as RO
from controller.fleet_db import FleetDb
from controller.release_local import LocalReleases
from controller.rollout_adopt import OLD_NAME
from controller.rollout_store import RolloutStore
from controller.store import StoreError
from tests.rollouts.test_release_share import build
from tests.rollouts.test_rollout_decisions import REL, fleet, online, st


def test_move_store_takes_the_rollouts_to_postgresql(postgres_url, tmp_path, capsys):
    data = tmp_path / "ctl"
    FleetDb(data).open_migrated().close()
    store = RolloutStore(data)
    bundle, man = build(tmp_path, "2.0.0", os.urandom(1_500_000))
    release_registry.publish(store, data, bundle, user="rel", now=time.time())
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
    assert {t: moved[t] for t in ("releases", "rollouts", "rollout_kiosks", "rollout_settings", "release_manifests",
                                  "release_objects")} == {
        "releases": 1, "rollouts": 1, "rollout_kiosks": 6, "rollout_settings": 1, "release_manifests": 1,
        "release_objects": len(man.files)}
    on_pg = RolloutStore(FleetDb(tmp_path / "ctl-pg", postgres_url))
    try:
        assert on_pg.get("r1") == r and on_pg.releases() == RolloutStore(data).releases()
        # The published bundle went with it: another instance's data folder gets every file, checked.
        here = LocalReleases(on_pg, tmp_path / "ctl-pg")
        rec = on_pg.release("2.0.0")
        assert here.file(rec, R.MANIFEST_FILE).read_bytes() == (bundle / R.MANIFEST_FILE).read_bytes()
        for e in man.files:
            assert here.file(rec, e.sha256).read_bytes() == R.object_path(bundle, e.sha256).read_bytes()
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


def test_move_store_refuses_a_published_release_whose_bundle_is_gone_or_changed(postgres_url, tmp_path):
    data = tmp_path / "ctl"
    FleetDb(data).open_migrated().close()
    store = RolloutStore(data)
    bundle, man = build(tmp_path, "2.0.0", os.urandom(2000))
    release_registry.publish(store, data, bundle, user="rel", now=time.time())
    store.close()
    manifest = release_registry.release_dir(data, "kiosk", "2.0.0") / R.MANIFEST_FILE
    raw = manifest.read_bytes()
    manifest.unlink()
    with pytest.raises(StoreError, match="release kiosk 2.0.0 is published but .* has no manifest.json"):
        store_move.move(data, postgres_url)
    pg = FleetDb(tmp_path / "x", postgres_url).connect()
    try:
        assert "releases" not in sql_dialect.tables(pg)  # refused before copying anything
    finally:
        pg.close()
    manifest.write_bytes(raw)
    R.object_path(manifest.parent, man.files[0].sha256).write_bytes(b"not the wheel")
    with pytest.raises(StoreError, match="release kiosk 2.0.0: a file in .* is not the one published"):
        store_move.move(data, postgres_url)
