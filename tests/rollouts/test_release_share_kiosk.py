"""A kiosk updates from the controller instance that did NOT publish the release (issue 16).

Two real controllers on one PostgreSQL database, each with its own data folder; the release is
published to A's API by the release manager's ``kiosk-release publish`` (its files go into the
fleet database), A sends the signed ``cmd/update`` naming
B's release address, and the real kiosk agent runs the real updater (download over HTTP from B,
pip --no-index venv, atomic switch, health window with the probe app) and commits it. B had
nothing of the release on disk: it copied each file from the database, checked, as it was asked."""

from __future__ import annotations

import dataclasses

from contract import release as R
from contract import signing, updates
from controller import release_registry
from controller.fleet_db import FleetDb
from controller.server import Controller
from controller.web import rollout_api
from controller.web.accounts import Accounts
from controller.web.serve import start_console
from provisioning.release_publish import Client, publish
from tests.fleet.conftest import wait_until
from tests.rollouts.conftest import start_instance
from tests.rollouts.test_kiosk_update_link import _states, _steps, _wait_final


def test_a_kiosk_installs_a_release_from_the_instance_that_did_not_publish_it(
        broker, postgres_url, releases, kiosk, app, make_kiosk, raw, tmp_path):
    key_dir = tmp_path / "fleet-key"
    signing.load_or_create_key(key_dir)
    ctls: dict[str, Controller] = {}
    jobs = {}
    consoles: dict = {}
    try:
        for name in ("a", "b"):
            ctls[name], jobs[name] = start_instance(broker, postgres_url, tmp_path, name, key_dir)
            consoles[name] = start_console(ctls[name], dataclasses.replace(ctls[name].config, http="127.0.0.1:0"),
                                           extra_routes=tuple(rollout_api.routes(jobs[name])))
        url_a, url_b = consoles["a"][1], consoles["b"][1]
        # The release manager's kiosk-release publish, to A's API: pieces, then the manifest.
        bundle = releases.base / "bundle-2.0.0"
        admin = Accounts(ctls["a"].config.data_dir, fleet_db=FleetDb.from_config(ctls["a"].config)).create_token(
            "rel", "admin")
        rec = publish(bundle, Client(url_a, admin))
        assert rec["version"] == "2.0.0" and jobs["b"].store.release("2.0.0")["published_by"] == "token:rel"
        on_b = release_registry.release_dir(ctls["b"].config.data_dir, "kiosk", "2.0.0")
        assert not on_b.exists()

        r = raw("watcher")
        r.subscribe("kiosk/v1/+/update/state")
        make_kiosk("K-SHR", ctls["a"].public_key(), updater=_steps(kiosk, app))
        wait_until(lambda: (ctls["a"].kiosk("K-SHR") or {}).get("state") == "online", 10, "kiosk online")
        args = updates.update_args(version="2.0.0", url=f"{url_b.rstrip('/')}/releases/kiosk/2.0.0",
                                   manifest_sha256=jobs["a"].store.release("2.0.0")["manifest_sha256"],
                                   rollout="r-1")
        ctls["a"].send_command("K-SHR", "update", args, "alice")
        final = _wait_final(r, "K-SHR", "2.0.0")
        assert (final.state, final.running) == ("committed", "2.0.0"), final.reason
        assert [s.state for s in _states(r, "K-SHR")] == ["downloading", "installed", "switched", "committed"]
        assert kiosk.sw.current() == kiosk.sw.committed() == "2.0.0"
        # Served by B from what it copied out of the database: the manifest and each object the kiosk
        # lacked (the new wheel; the one 1.0.0 has too the kiosk reuses), once each.
        man = R.parse_manifest((bundle / R.MANIFEST_FILE).read_bytes())
        copied = sorted(p.name for p in (on_b / R.OBJECTS_DIR).iterdir())
        new = [e.sha256 for e in man.files if "kiosk_probe-2.0.0" in e.path]
        assert set(new) <= set(copied) <= {e.sha256 for e in man.files}
        assert jobs["b"].local_releases.materialised == 1 + len(copied)
        assert jobs["b"].downloads.downloads >= 1 + len(copied) and jobs["a"].downloads.downloads == 0
        for sha in copied:
            assert R.object_path(on_b, sha).read_bytes() == R.object_path(bundle, sha).read_bytes()
    finally:
        for console, _ in consoles.values():
            console.stop()
        for c in ctls.values():
            c.stop()
