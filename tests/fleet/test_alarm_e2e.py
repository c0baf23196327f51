"""End to end on a headless kiosk (the runtime ``kiosk-agent --simulated`` runs, with its printer
simulator on a pty), real Mosquitto and the real controller: paper out -> one ``paper_out`` alarm,
paper back -> cleared, cover open -> one ``cover_open`` alarm; never a second alarm for one fault.
(The Kivy kiosk's counterpart: tests/kiosk/test_fleet_alarms.py.)"""

from __future__ import annotations

import json

from .conftest import wait_until
from .test_alarms_config import _ctl

K = "K-HEADLESS"


def _active(ctl) -> list[tuple[str, str]]:
    return sorted((a["rule"], a["subject"]) for a in ctl.alarms(kiosk_id=K)["items"])


def test_headless_printer_faults_raise_one_alarm_each(make_controller, make_kiosk, kiosk_sims):
    ctl = make_controller()
    make_kiosk(K, ctl.public_key(), simulated=True)
    printer = kiosk_sims[K]["printer"]
    wait_until(lambda: "printer" in ((ctl.kiosk(K) or {}).get("devices") or {}), 10, "printer status stored")
    assert _active(ctl) == []

    for control, back, rule in (({"cmd": "paper", "state": "out"}, {"cmd": "paper", "state": "ok"}, "paper_out"),
                                ({"cmd": "paper", "state": "low"}, {"cmd": "paper", "state": "ok"}, "paper_low"),
                                ({"cmd": "cover", "open": True}, {"cmd": "cover", "open": False}, "cover_open")):
        printer.control(control)
        wait_until(lambda r=rule: _active(ctl) == [(r, "printer")], 15, f"{rule} raised alone")
        if rule == "paper_out":
            shown = _ctl(ctl.config.data_dir, "kiosks", "show", K)
            assert "device printer: error paper_out UNAVAILABLE load_paper" in shown.stdout, shown.stdout
        printer.control(back)
        wait_until(lambda: _active(ctl) == [], 15, f"{rule} cleared")
    shown = _ctl(ctl.config.data_dir, "kiosks", "show", K).stdout
    assert "device printer: idle  available" in shown and "None" not in shown.split("telemetry")[0], shown

    history = sorted(a["rule"] for a in ctl.alarms(kiosk_id=K, active=None)["items"])
    assert history == ["cover_open", "paper_low", "paper_out"]  # one fault, one alarm
    stored = ctl.alarms(kiosk_id=K, active=None)["items"][0]
    assert stored["message"] == f"printer: {stored['rule'].replace('_', ' ')}"
    assert json.loads(stored["params"]) == {"device": "printer"}  # rule id + params: what the console translates
