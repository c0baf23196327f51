"""``kioskctl releases`` and ``kioskctl rollout``: publish, create (the canary's cmd/update is
queued for and sent by the running controller), show, pause, resume, abort, with --json and
the audit log."""

from __future__ import annotations

import json

import pytest

from controller import ctl
from kiosk_ui.update_hooks import HealthSignals
from tests.conftest import BACKENDS
from tests.fleet.conftest import wait_until


def run(capsys, data_dir, *argv, database: str = "") -> tuple[int, object]:
    code = ctl.main(["--data-dir", str(data_dir), *(["--database", database] if database else []), "--user", "alice",
                     *argv])
    out, err = capsys.readouterr()
    return code, (json.loads(out) if "--json" in argv and code == 0 else out + err)


@pytest.mark.parametrize("backend", BACKENDS)
def test_publish_create_pause_resume_abort(make_controller, make_kiosk, releases, capsys, tmp_path, fleet_database):
    c = make_controller(database=fleet_database)
    for kid in ("K-C1", "K-C2"):
        make_kiosk(kid, c.public_key(), health=HealthSignals(tmp_path / kid, "1.0.0"))
        wait_until(lambda kid=kid: (c.kiosk(kid) or {}).get("state") == "online", 10, "online")
    d = c.config.data_dir

    def kctl(*argv):  # kioskctl on the controller's fleet database (--database when on PostgreSQL)
        return run(capsys, d, *argv, database=fleet_database)
    code, rel = kctl("releases", "publish", str(releases.base / "bundle-2.0.0"), "--json")
    assert code == 0 and rel["version"] == "2.0.0" and len(rel["manifest_sha256"]) == 64
    code, out = kctl("releases", "publish", str(releases.base / "bundle-2.0.0"))
    assert code == 2 and "already published" in out
    code, out = kctl("releases", "publish", str(tmp_path))
    assert code == 2 and "not a bundle" in out

    code, r = kctl("rollout", "create", "2.0.0", "--base-url", "https://ctl.example/releases",
                  "--id", "r-cli", "--canary", "1", "--waves", "100", "--approval", "--json")
    assert code == 0 and r["status"] == "running" and [w["total"] for w in r["progress"]] == [1, 1]
    canary = next(k for k, v in r["kiosks"].items() if v["wave"] == 0)
    cmd = wait_until(lambda: next((x for x in c.commands(kiosk_id=canary)["items"] if x["name"] == "update"), None),
                     10, "cmd/update queued and sent by the controller")
    assert cmd["args"]["rollout"] == "r-cli" and cmd["args"]["url"] == "https://ctl.example/releases/kiosk/2.0.0"
    assert cmd["args"]["manifest_sha256"] == rel["manifest_sha256"]

    code, r = kctl("rollout", "pause", "r-cli", "--reason", "field report", "--json")
    assert code == 0 and (r["status"], r["reason"]) == ("paused", {"code": "paused_by_operator",
                                                                    "params": {"note": "field report"}})
    code, out = kctl("rollout", "list")
    assert code == 0 and "paused by an operator (field report)" in out
    code, out = kctl("rollout", "list", "--lang", "zh-CN")
    assert code == 0 and "由操作员暂停 (field report)" in out
    code, out = kctl("rollout", "list", "--lang", "zh-HK")
    assert code == 0 and "由操作員暫停 (field report)" in out
    code, out = kctl("rollout", "approve", "r-cli")
    assert code == 2 and "cannot approve a roll-out that is paused" in out
    code, r = kctl("rollout", "resume", "r-cli", "--json")
    assert code == 0 and r["status"] == "running"
    code, out = kctl("rollout", "show", "r-cli")
    assert code == 0 and canary in out and "sent" in out
    code, r = kctl("rollout", "abort", "r-cli", "--json")
    assert code == 0 and r["status"] == "aborted"
    code, items = kctl("rollout", "list", "--json")
    assert [x["id"] for x in items] == ["r-cli"] and "kiosks" not in items[0]
    actions = [a["action"] for a in c.audit_log(limit=50)["items"]]
    for a in ("release_publish", "rollout_create", "rollout_pause", "rollout_approve", "rollout_resume",
              "rollout_abort"):
        assert a in actions, a


def test_create_takes_the_releases_url_and_time_zone_from_the_controller_config(make_controller, releases, capsys,
                                                                                tmp_path):
    c = make_controller()
    d = c.config.data_dir
    assert run(capsys, d, "releases", "publish", str(releases.base / "bundle-2.0.0"))[0] == 0
    code, out = run(capsys, d, "rollout", "create", "2.0.0", "--id", "r-none")
    assert code == 2 and "no releases URL" in out and "--base-url" in out  # never a made-up address
    cfg = tmp_path / "controller.toml"
    cfg.write_text('broker = "mqtts://ctl.example:8883"\ndata_dir = "/var/lib/kiosk-controller"\n'
                   'releases_url = "https://ctl.example:8443/releases"\ntime_zone = "Asia/Hong_Kong"\n')
    code, r = run(capsys, d, "rollout", "create", "2.0.0", "--id", "r-cfg", "--controller-config", str(cfg),
                  "--window", "02:00-05:00", "--json")
    assert code == 0 and r["url"] == "https://ctl.example:8443/releases/kiosk/2.0.0"
    assert r["window"] == {"start": "02:00", "end": "05:00", "time_zone": "Asia/Hong_Kong"}
    code, r = run(capsys, d, "rollout", "create", "2.0.0", "--id", "r-flags", "--controller-config", str(cfg),
                  "--base-url", "https://other.example/releases", "--time-zone", "Asia/Urumqi",
                  "--window", "01:00-04:00", "--json")
    assert code == 0 and r["url"] == "https://other.example/releases/kiosk/2.0.0"  # flags override
    assert r["window"]["time_zone"] == "Asia/Urumqi"
    cfg.write_text('broker = "mqtt://127.0.0.1:1883"\ndata_dir = "x"\ntime_zone = "Mars/Olympus"\n')
    code, out = run(capsys, d, "rollout", "create", "2.0.0", "--id", "r-bad", "--controller-config", str(cfg),
                    "--base-url", "https://ctl.example/releases")
    assert code == 2 and "time_zone" in out and str(cfg) in out
