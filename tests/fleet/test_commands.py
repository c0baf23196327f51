"""Signed commands end to end on the real broker: verification, results, expiry, kioskctl --wait."""

from __future__ import annotations

import json
import os
import subprocess
import time

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from contract import commands as cmd_contract
from contract import signing, topics
from controller import commands
from tests.fleet.conftest import wait_until
from tests.support.processes import REPO

KIOSKCTL = str(REPO / ".venv" / "bin" / "kioskctl")


def _signed(key, kiosk_id: str, name: str, args: dict, now: float, ttl: float = 60, cid: str | None = None) -> dict:
    cmd = commands.new_command(kiosk_id, name, args, "tester", now, ttl=ttl, command_id=cid)
    return signing.sign(key, cmd_contract.wire_body(cmd))


def test_command_round_trip_and_rejections(make_controller, make_kiosk, raw):
    ctl = make_controller()
    kiosk = make_kiosk("K-CMD", ctl.public_key())
    wait_until(lambda: (ctl.kiosk("K-CMD") or {}).get("state") == "online", 10, "kiosk online")

    cid = ctl.send_command("K-CMD", "set_mode", {"mode": "maintenance"}, "alice")
    rec = ctl.wait_command(cid, 10)
    assert rec["status"] == "succeeded" and rec["result"] == {"mode": "maintenance"}
    assert kiosk.agent.mode == "maintenance"
    wait_until(lambda: ctl.kiosk("K-CMD")["mode"] == "maintenance", 15, "mode in registry")  # the birth, a batch later

    diag = ctl.wait_command(ctl.send_command("K-CMD", "collect_diagnostics", {}, "alice"), 10)
    assert diag["status"] == "succeeded" and diag["result"]["boot_id"] == kiosk.agent.boot_id

    unknown = ctl.wait_command(ctl.send_command("K-CMD", "frobnicate", {}, "alice"), 10)
    assert unknown["status"] == "rejected" and "unknown_command" in unknown["error"]

    bad = ctl.wait_command(ctl.send_command("K-CMD", "set_mode", {"mode": "party"}, "alice"), 10)
    assert bad["status"] == "rejected" and "bad_arguments" in bad["error"] and "mode" in bad["error"]

    extra = ctl.wait_command(ctl.send_command("K-CMD", "reboot", {"now": True}, "alice"), 10)
    assert extra["status"] == "rejected" and "unknown argument 'now'" in extra["error"]

    no_printer = ctl.wait_command(ctl.send_command("K-CMD", "test_print", {}, "alice"), 10)
    assert no_printer["status"] == "failed" and "no printer" in no_printer["error"]

    # Forged, expired and replayed commands published straight to the kiosk.
    r = raw("attacker")
    r.subscribe("kiosk/v1/K-CMD/cmd/+/result")
    now = time.time()
    forged = _signed(Ed25519PrivateKey.generate(), "K-CMD", "set_mode", {"mode": "normal"}, now)
    r.publish(topics.cmd_topic("K-CMD", "set_mode"), forged)
    res = r.wait_json(lambda t, b: b.get("id") == forged["id"])
    assert res["status"] == "rejected" and res["reason"] == "bad_signature"

    tampered = dict(_signed(ctl.key, "K-CMD", "set_mode", {"mode": "normal"}, now))
    tampered["args"] = {"mode": "out_of_service"}
    r.publish(topics.cmd_topic("K-CMD", "set_mode"), tampered)
    res = r.wait_json(lambda t, b: b.get("id") == tampered["id"])
    assert res["reason"] == "bad_signature"

    expired = _signed(ctl.key, "K-CMD", "set_mode", {"mode": "normal"}, now - 120, ttl=60)
    r.publish(topics.cmd_topic("K-CMD", "set_mode"), expired)
    res = r.wait_json(lambda t, b: b.get("id") == expired["id"])
    assert res["status"] == "expired" and res["reason"] == "expired"

    once = _signed(ctl.key, "K-CMD", "set_mode", {"mode": "normal"}, now)
    r.publish(topics.cmd_topic("K-CMD", "set_mode"), once)
    first = r.wait_json(lambda t, b: b.get("id") == once["id"])
    assert first["status"] == "ok"
    r.messages.clear()
    r.publish(topics.cmd_topic("K-CMD", "set_mode"), once)
    again = r.wait_json(lambda t, b: b.get("id") == once["id"])
    assert again["status"] == "rejected" and again["reason"] == "replayed"

    other = _signed(ctl.key, "K-OTHER", "set_mode", {"mode": "normal"}, now)
    r.publish(topics.cmd_topic("K-CMD", "set_mode"), other)
    res = r.wait_json(lambda t, b: b.get("id") == other["id"])
    assert res["reason"] == "wrong_kiosk"

    r.publish(topics.cmd_topic("K-CMD", "set_mode"), b"{not json")
    res = r.wait_json(lambda t, b: b.get("reason") == "malformed")
    assert res["status"] == "rejected"


def test_command_to_offline_kiosk_expires_and_is_never_sent(make_controller, make_kiosk):
    ctl = make_controller()
    kiosk = make_kiosk("K-OFF", ctl.public_key())
    wait_until(lambda: (ctl.kiosk("K-OFF") or {}).get("state") == "online", 10, "kiosk online")
    kiosk.stop()
    wait_until(lambda: ctl.kiosk("K-OFF")["state"] == "offline", 10, "kiosk offline")
    cid = ctl.send_command("K-OFF", "collect_diagnostics", {}, "bob", ttl=1)
    assert ctl.command(cid)["status"] == "queued"
    rec = ctl.wait_command(cid, 10)
    assert rec["status"] == "expired" and rec["sent_at"] is None and "offline" in rec["error"]
    never = ctl.send_command("NEVER-SEEN", "reboot", {}, "bob", ttl=1)
    assert ctl.wait_command(never, 10)["status"] == "expired"


def test_queued_command_is_sent_when_kiosk_comes_online(make_controller, make_kiosk):
    ctl = make_controller()
    cid = ctl.send_command("K-LATE", "set_mode", {"mode": "out_of_service"}, "carol", ttl=60)
    assert ctl.command(cid)["status"] == "queued"  # committed before send_command returned
    make_kiosk("K-LATE", ctl.public_key())
    rec = ctl.wait_command(cid, 10)
    assert rec["status"] == "succeeded"
    audit = [(a["action"], a["detail"]["id"], a["result"]) for a in ctl.audit_log(user="carol")["items"]]
    assert audit == [("command.result", cid, "succeeded"), ("command.send", cid, "queued")]


def test_kioskctl_command_send_wait_prints_result(make_controller, make_kiosk, tmp_path):
    ctl = make_controller()
    make_kiosk("K-CTL", ctl.public_key())
    wait_until(lambda: (ctl.kiosk("K-CTL") or {}).get("state") == "online", 10, "kiosk online")
    env = {**os.environ, "KIOSKCTL_USER": "dave"}
    data = str(tmp_path / "controller")
    r = subprocess.run([KIOSKCTL, "--data-dir", data, "command", "send", "K-CTL", "set_mode",
                        "--args", '{"mode": "maintenance"}', "--wait", "--json"],
                       capture_output=True, text=True, timeout=60, env=env)
    assert r.returncode == 0, r.stderr
    rec = json.loads(r.stdout)
    assert rec["status"] == "succeeded" and rec["issuer"] == "dave" and rec["result"] == {"mode": "maintenance"}

    r = subprocess.run([KIOSKCTL, "--data-dir", data, "command", "send", "K-CTL", "set_mode",
                        "--args", '{"mode": "disco"}', "--wait"], capture_output=True, text=True, timeout=60, env=env)
    assert r.returncode == 1 and "REJECTED" in r.stdout and "bad_arguments" in r.stdout

    r = subprocess.run([KIOSKCTL, "--data-dir", data, "command", "send", "K-CTL", "set_mode", "--args", "{oops"],
                       capture_output=True, text=True, timeout=60, env=env)
    assert r.returncode == 2 and "--args" in r.stderr and "Traceback" not in r.stderr

    r = subprocess.run([KIOSKCTL, "--data-dir", data, "public-key"], capture_output=True, text=True, timeout=30)
    assert r.stdout.strip() == ctl.public_key()

    r = subprocess.run([KIOSKCTL, "--data-dir", data, "audit", "--json"], capture_output=True, text=True, timeout=30)
    assert [a["user"] for a in json.loads(r.stdout)["items"]][:2] == ["dave", "dave"]
