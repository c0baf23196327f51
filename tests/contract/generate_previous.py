"""Regenerate ``previous_v1.json``: the payloads today's (contract "v": 1) kiosks send.

Run once, against the code *before* the contract redesign (commit 791d2d2), so the mixed-fleet
tests replay exactly what a kiosk on the previous version puts on the wire:

    git stash; .venv/bin/python -m tests.contract.generate_previous; git stash pop

Kept for the record of how the fixture was made; the fixture, not this script, is what the tests read.
"""

from __future__ import annotations

import json
import time
from pathlib import Path

from device_drivers.manager import DeviceConfig, DeviceManager
from foundation.settings import KioskConfig, from_mapping
from kiosk_ui.agent import commands
from kiosk_ui.agent.agent import KioskAgent
from kiosk_ui.agent.runtime import KioskRuntime
from kiosk_ui.simulated import start_all

OUT = Path(__file__).with_name("previous_v1.json")


def _wait_state(dev, want, timeout=10.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        st = dev.status()
        if want(st):
            return st
        time.sleep(0.05)
    raise AssertionError("device never reached the state")


def main() -> None:
    import tempfile

    tmp = Path(tempfile.mkdtemp())
    cfg = from_mapping(KioskConfig, {"kiosk_id": "GD-OLD-1", "broker": "mqtt://127.0.0.1:1", "data_dir": str(tmp / "k"),
                                     "site": "site-a", "simulated": True})
    sims = start_all(tmp / "sims", ("printer",))
    rt = KioskRuntime(cfg, ports={"printer": str(sims["printer"].link)})
    agent: KioskAgent = rt.agent
    out: dict = {}
    enc = lambda body: json.loads(__import__("contract.topics", fromlist=["encode"]).encode(body))  # noqa: E731
    out["birth"] = enc(agent.birth())
    out["telemetry"] = enc(agent.telemetry())
    headless = {}
    for label, cmd in (("paper_ok", {"cmd": "paper", "state": "ok"}), ("paper_low", {"cmd": "paper", "state": "low"}),
                       ("paper_out", {"cmd": "paper", "state": "out"})):
        sims["printer"].control(cmd)
        headless[label] = enc({**rt.device_status()["printer"], "kiosk_id": cfg.kiosk_id})
    sims["printer"].control({"cmd": "paper", "state": "ok"})
    sims["printer"].control({"cmd": "cover", "open": True})
    headless["cover_open"] = enc({**rt.device_status()["printer"], "kiosk_id": cfg.kiosk_id})
    sims["printer"].control({"cmd": "cover", "open": False})
    rt._printer.close()
    rt._printer = None
    out["headless_printer"] = headless
    # The Kivy kiosk published the device manager's status minus its statistics (app_main.py).
    mgr = DeviceManager([DeviceConfig("printer", "printer", str(sims["printer"].link))])
    mgr.start()
    kivy = {}
    for label, cmd, want in (
            ("paper_ok", {"cmd": "paper", "state": "ok"}, lambda s: s["detail"].get("paper") == "full"),
            ("paper_low", {"cmd": "paper", "state": "low"}, lambda s: s["detail"].get("paper") == "low"),
            ("paper_out", {"cmd": "paper", "state": "out"}, lambda s: s["detail"].get("paper") == "out")):
        sims["printer"].control(cmd)
        mgr["printer"].check_health("internal")
        st = _wait_state(mgr["printer"], want)
        kivy[label] = enc({**{k: v for k, v in st.items() if k != "stats"}, "kiosk_id": cfg.kiosk_id})
    sims["printer"].control({"cmd": "paper", "state": "ok"})
    sims["printer"].control({"cmd": "cover", "open": True})
    mgr["printer"].check_health("internal")
    st = _wait_state(mgr["printer"], lambda s: s["detail"].get("cover") == "open")
    kivy["cover_open"] = enc({**{k: v for k, v in st.items() if k != "stats"}, "kiosk_id": cfg.kiosk_id})
    mgr.stop()
    out["kivy_printer"] = kivy
    out["supervisor"] = enc({"state": "idle", "detail": "ok", "tamper": False, "cover": "closed", "temperature": 38.5,
                             "safe_mode": False, "hold_s": 0, "required_action": "", "kiosk_id": cfg.kiosk_id})
    agent.seq = 16
    agent._journal_event("ev-fixture-1", "device_state", {"device": "printer", "state": "error",
                                                         "detail": "paper_out", "previous": "idle"})
    out["event"] = json.loads(agent.journal.pending(0, 10)[-1][2])
    out["config_reported_applied"] = enc({"kiosk_id": cfg.kiosk_id, "version": 3, "status": "applied",
                                          "config": {"volume": 70}})
    out["config_reported_rejected"] = enc({"kiosk_id": cfg.kiosk_id, "version": 4, "status": "rejected",
                                           "reason": "volume: must be 0-100", "config": {"volume": 70}})
    out["cmd_result_ok"] = enc(commands.result("c0ffee00c0ffee00", cfg.kiosk_id, "ok", data={"mode": "maintenance"}))
    out["cmd_result_rejected"] = enc(commands.result("c0ffee00c0ffee01", cfg.kiosk_id, "rejected",
                                                     reason="bad_signature", error="signature does not verify"))
    out["will"] = enc({"state": "offline", "reason": "lwt", "kiosk_id": cfg.kiosk_id, "boot_id": agent.boot_id})
    out["shutdown"] = enc({"state": "offline", "reason": "shutdown", "kiosk_id": cfg.kiosk_id,
                           "boot_id": agent.boot_id})
    out["svc_request"] = enc({"service": "queue", "op": "take", "args": {"service": "social_security"}})
    agent.journal.close()
    for s in sims.values():
        s.stop()
    OUT.write_text(json.dumps(out, indent=1, ensure_ascii=False, sort_keys=True) + "\n")


if __name__ == "__main__":
    main()
