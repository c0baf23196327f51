"""Alarms raised and cleared from device status, events and telemetry; ack; layered config with kioskctl."""

from __future__ import annotations

import json
import os
import subprocess

from contract import topics
from tests.fleet.conftest import wait_until
from tests.support.processes import REPO

KIOSKCTL = str(REPO / ".venv" / "bin" / "kioskctl")


def _ctl(data, *argv, user: str = "erin") -> subprocess.CompletedProcess:
    return subprocess.run([KIOSKCTL, "--data-dir", str(data), *argv], capture_output=True, text=True, timeout=30,
                          env={**os.environ, "KIOSKCTL_USER": user})


def _active(ctl, kiosk_id):
    return {(a["rule"], a["subject"]) for a in ctl.alarms(kiosk_id=kiosk_id)["items"]}


def test_alarms_raise_clear_and_ack(make_controller, raw, tmp_path):
    ctl = make_controller()
    r = raw("kiosk-sim")
    k = "K-ALM"
    r.publish(topics.topic(k, "status"), {"v": 1, "state": "online", "kiosk_id": k, "boot_id": "b1"}, retain=True)
    r.publish(topics.topic(k, "devices/printer"), {"v": 1, "kiosk_id": k, "state": "error", "detail": "paper_out",
                                                  "paper": "out", "cover": "open"})
    r.publish(topics.topic(k, "devices/supervisor"), {"v": 1, "kiosk_id": k, "state": "idle", "tamper": True})
    r.publish(topics.topic(k, "telemetry"), {"v": 1, "kiosk_id": k, "uptime": 5, "enclosure_temperature": 61.5}, 0)
    r.publish(topics.topic(k, "events"), {"v": 1, "id": "pc-1", "kiosk_id": k, "type": "host_power_cycled", "seq": 1})
    # Two faults of the printer, two alarms; device_error only stands in for faults without a rule.
    want = {("paper_out", "printer"), ("cover_open", "printer"),
            ("tamper", "supervisor"), ("enclosure_hot", ""), ("host_power_cycled", "")}
    wait_until(lambda: _active(ctl, k) == want, 10, "alarms raised")
    severities = {a["rule"]: a["severity"] for a in ctl.alarms(kiosk_id=k)["items"]}
    assert severities["tamper"] == "critical" and severities["paper_out"] == "major"

    # Hysteresis: 52 °C is below the limit but above the clear value; 45 °C clears.
    r.publish(topics.topic(k, "telemetry"), {"v": 1, "kiosk_id": k, "uptime": 6, "enclosure_temperature": 52}, 0)
    r.publish(topics.topic(k, "devices/printer"), {"v": 1, "kiosk_id": k, "state": "idle", "detail": "paper_low",
                                                  "paper": "low", "cover": "closed"})
    wait_until(lambda: ("paper_low", "printer") in _active(ctl, k), 10, "paper low")
    assert ("enclosure_hot", "") in _active(ctl, k) and ("paper_out", "printer") not in _active(ctl, k)
    r.publish(topics.topic(k, "telemetry"), {"v": 1, "kiosk_id": k, "uptime": 7, "enclosure_temperature": 45}, 0)
    wait_until(lambda: ("enclosure_hot", "") not in _active(ctl, k), 10, "temperature alarm cleared")

    alarm = next(a for a in ctl.alarms(kiosk_id=k)["items"] if a["rule"] == "tamper")
    data = ctl.config.data_dir
    res = _ctl(data, "alarms", "ack", str(alarm["id"]))
    assert res.returncode == 0 and "acknowledged" in res.stdout, res.stderr
    acked = next(a for a in ctl.alarms(kiosk_id=k)["items"] if a["id"] == alarm["id"])
    assert acked["acked_by"] == "erin" and acked["cleared_at"] is None  # acknowledged, still active
    assert _ctl(data, "alarms", "ack", "999999").returncode == 1
    history = ctl.alarms(kiosk_id=k, active=None)["items"]
    assert {a["rule"] for a in history if a["cleared_at"]} >= {"paper_out", "enclosure_hot"}
    actions = [a["action"] for a in ctl.audit_log(user="erin")["items"]]
    assert actions.count("alarm.ack") == 2

    r.publish(topics.topic(k, "status"), {"v": 1, "state": "offline", "reason": "lwt", "kiosk_id": k}, retain=True)
    wait_until(lambda: ("kiosk_offline", "") in _active(ctl, k), 10, "offline alarm")


def test_layered_config_set_applied_and_diffed(make_controller, make_kiosk):
    ctl = make_controller()
    a = make_kiosk("K-CFG-A", ctl.public_key(), site="north")
    b = make_kiosk("K-CFG-B", ctl.public_key(), site="south")
    wait_until(lambda: ctl.list_kiosks(state="online")["total"] == 2, 10, "both online")
    data = ctl.config.data_dir
    assert _ctl(data, "config", "set", "fleet", '{"volume": 40, "printer": {"density": 3}}').returncode == 0
    assert _ctl(data, "config", "set", "site:north", '{"volume": 70}').returncode == 0
    assert _ctl(data, "config", "set", "kiosk:K-CFG-B", '{"printer": {"density": 5}, "language": "en"}').returncode == 0
    wait_until(lambda: all(d["in_sync"] for d in ctl.config_diff()), 10, "kiosks in sync")
    zone = {"time_zone": ctl.config.time_zone}  # the controller's, with every desired config
    assert a.config_values == {"volume": 70, "printer": {"density": 3}, **zone}
    assert b.config_values == {"volume": 40, "printer": {"density": 5}, "language": "en", **zone}

    bad = _ctl(data, "config", "set", "fleet", '{"volume": 400}')
    assert bad.returncode == 1 and "volume" in bad.stderr and "0 to 100" in bad.stderr
    typo = _ctl(data, "config", "set", "fleet", '{"volum": 4}')
    assert typo.returncode == 1 and "volum" in typo.stderr and "unknown setting" in typo.stderr
    assert _ctl(data, "config", "set", "planet:earth", "{}").returncode == 1

    # A kiosk that is offline while its config changes shows the difference until it applies it.
    b.stop()
    wait_until(lambda: ctl.kiosk("K-CFG-B")["state"] == "offline", 10, "B offline")
    assert _ctl(data, "config", "set", "kiosk:K-CFG-B", '{"language": "zh-HK"}').returncode == 0
    diff = json.loads(_ctl(data, "config", "diff", "K-CFG-B", "--json").stdout)[0]
    assert not diff["in_sync"] and {"key": "language", "desired": "zh-HK", "reported": "en"} in diff["differences"]
    out = _ctl(data, "config", "diff", "--out-of-sync").stdout
    assert "K-CFG-B" in out and "K-CFG-A" not in out
    b2 = make_kiosk("K-CFG-B", ctl.public_key(), site="south")
    wait_until(lambda: ctl.config_diff("K-CFG-B")[0]["in_sync"], 10, "B applies the config after reconnect")
    assert b2.config_values["language"] == "zh-HK"
    audit = [x["action"] for x in ctl.audit_log(user="erin")["items"]]
    assert audit.count("config.set") == 7  # four accepted, three rejected: every attempt is audited
