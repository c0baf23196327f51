"""What a kiosk accepts (issue 14, item 7): only a desired config the controller signed for it,
and a result for every command, even one nested too deep to parse. Real controller and kiosk
runtime on a private broker (no ACL there: this is the kiosk's own line of defence)."""

from __future__ import annotations

from contract import signing, topics
from tests.fleet.conftest import kiosk_sims, make_controller, make_kiosk, raw, wait_until

__all__ = ["kiosk_sims", "make_controller", "make_kiosk", "raw"]


def test_only_a_desired_config_signed_for_this_kiosk_is_applied(make_controller, make_kiosk, raw):
    ctl = make_controller()
    k = make_kiosk("K-SIG", ctl.public_key())
    ctl.config_set("kiosk:K-SIG", {"volume": 30}, user="erin")
    applied = {"volume": 30, "time_zone": ctl.config.time_zone}  # the controller's zone rides along
    wait_until(lambda: k.config_values == applied, 10, "signed config applied")
    r = raw("forger")
    r.subscribe(topics.topic("K-SIG", "config/reported"))
    forged = {"version": 999, "config": {"volume": 100}, "kiosk_id": "K-SIG"}
    r.publish(topics.topic("K-SIG", "config/desired"), topics.encode(forged), retain=True)
    report = r.wait_json(lambda t, b: b.get("version") == 999)
    assert report["status"] == "rejected" and "not signed" in report["reason"]
    # Signed by the controller, but for another kiosk: refused too.
    other = signing.sign(ctl.key, {"v": 1, "version": 1000, "config": {"volume": 99}, "kiosk_id": "K-OTHER"})
    r.publish(topics.topic("K-SIG", "config/desired"), topics.encode(other), retain=True)
    report = r.wait_json(lambda t, b: b.get("version") == 1000)
    assert report["status"] == "rejected" and "K-OTHER" in report["reason"]
    assert k.config_values == applied


def test_a_deeply_nested_command_gets_a_rejected_result(make_controller, make_kiosk, raw):
    ctl = make_controller()
    make_kiosk("K-DEEP", ctl.public_key())
    # Its birth follows its SUBSCRIBE on one connection: once the controller has it, the broker
    # routes commands to the kiosk (a command published earlier would reach nobody).
    wait_until(lambda: (ctl.kiosk("K-DEEP") or {}).get("state") == "online", 10, "kiosk online")
    r = raw("deep")
    r.subscribe(topics.topic("K-DEEP", "cmd/+/result"))
    deep = b'{"v":1,"id":"deep-1","args":' + b"[" * 100_000 + b"]" * 100_000 + b"}"
    r.publish(topics.cmd_topic("K-DEEP", "reboot"), deep)
    result = r.wait_json(lambda t, b: t.endswith("/cmd/reboot/result"))
    assert result["status"] == "rejected" and result["reason"] == "malformed"
    # The kiosk still works: a real command after it succeeds.
    cid = ctl.send_command("K-DEEP", "collect_diagnostics", {}, "erin")
    assert ctl.wait_command(cid, 10)["status"] == "succeeded"
