"""The kiosk runtime with the supervisor board simulator (real firmware core on a pseudo-terminal)."""

from __future__ import annotations

from tests.fleet.conftest import wait_until


def test_supervisor_tamper_temperature_and_power_cycle_reach_the_controller(make_controller, make_kiosk, sim):
    board, link = sim("supervisor")
    ctl = make_controller()
    kiosk = make_kiosk("K-SUP", ctl.public_key(), devices={"supervisor": str(link)}, telemetry_interval=1)
    kiosk.agent.device_poll = 0.3
    wait_until(lambda: "supervisor" in ((ctl.kiosk("K-SUP") or {}).get("devices") or {}), 15, "supervisor status")
    assert ctl.kiosk("K-SUP")["devices"]["supervisor"]["detail"]["tamper"] is False

    board.send({"cmd": "tamper", "active": True})
    wait_until(lambda: any(a["rule"] == "tamper" for a in ctl.alarms(kiosk_id="K-SUP")["items"]), 15, "tamper alarm")
    board.send({"cmd": "tamper", "active": False})
    wait_until(lambda: not any(a["rule"] == "tamper" for a in ctl.alarms(kiosk_id="K-SUP")["items"]), 15,
               "tamper cleared")

    board.send({"cmd": "temperature", "c": 61.0})
    wait_until(lambda: any(a["rule"] == "enclosure_hot" for a in ctl.alarms(kiosk_id="K-SUP")["items"]), 15,
               "enclosure too hot")

    rec = ctl.wait_command(ctl.send_command("K-SUP", "power_cycle", {"device": "printer", "off_seconds": 1}, "tech"),
                           15)
    assert rec["status"] == "succeeded", rec
    refused = ctl.wait_command(ctl.send_command("K-SUP", "power_cycle", {"device": "host"}, "tech"), 15)
    assert refused["status"] == "failed" and "protected" in refused["error"]
