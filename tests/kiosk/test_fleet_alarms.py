"""End to end on the Kivy kiosk: the real app (simulated devices, Xvfb), real Mosquitto and the real
controller. Printer paper out -> exactly one ``paper_out`` alarm stored; paper back -> cleared;
cover open -> exactly one ``cover_open``. The app publishes the device manager's status through
the contract's one builder, so the controller's rules see what the headless kiosk's would."""

from __future__ import annotations

from tests.kiosk.conftest import finish, kiosk_config, run_harness
from tests.support.waiting import wait_until

PRINTER = [({"cmd": "paper", "state": "out"}, [("paper_out", "printer")]),
           ({"cmd": "paper", "state": "ok"}, []),
           ({"cmd": "cover", "open": True}, [("cover_open", "printer")]),
           ({"cmd": "cover", "open": False}, [])]


def test_kivy_kiosk_printer_faults_raise_one_alarm_each(broker, controller, procs, tmp_path, artifacts):
    steps: list = [["screen", "attract"], ["sync", "step0"]]
    for i, (control, _) in enumerate(PRINTER, start=1):
        steps += [["sim", "printer", control], ["sync", f"step{i}"]]
    p = run_harness(procs, tmp_path, steps, artifacts=artifacts, tag="alarms",
                    config=kiosk_config(tmp_path, broker.url, public_key=controller.public_key()))

    def active():
        return sorted((a["rule"], a["subject"]) for a in controller.alarms(kiosk_id="k-ui")["items"])

    def go(token):
        line = p.wait_for(lambda s: s.startswith((f"WAIT {token}", "FAIL")), timeout=120)
        assert not line.startswith("FAIL"), line
        stdin = p.proc.stdin
        assert stdin is not None
        stdin.write(f"{token}\n")
        stdin.flush()

    wait_until(lambda: "printer" in ((controller.kiosk("k-ui") or {}).get("devices") or {}), 60, "printer status stored")
    assert active() == []
    go("step0")
    for i, (control, want) in enumerate(PRINTER, start=1):
        wait_until(lambda w=want: active() == w, 10, f"alarms {want} after {control}")
        go(f"step{i}")
    finish(p)
    history = sorted(a["rule"] for a in controller.alarms(kiosk_id="k-ui", active=None)["items"]
                     if a["subject"] == "printer")  # (the app's exit raises kiosk_offline, not a printer alarm)
    assert history == ["cover_open", "paper_out"]  # one fault, one alarm; no device_error beside them
