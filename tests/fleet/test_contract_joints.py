"""Every joint of the fleet contract with the real producer on one side and the real consumer on
the other: the device manager and the headless runtime driving a real printer simulator (pty),
read by the controller's parser and alarm rules; the real agent's status, telemetry, events,
config reported and command results read by the real controller over Mosquitto.

(The service client's requests against the real backend: tests/fleet/test_service_link.py.)
"""

from __future__ import annotations

from collections.abc import Callable

import pytest

from contract import device_status, topics
from contract.device_status import DeviceStatus
from controller import alarms, handlers
from controller.effects import AlarmChanged
from device_drivers.manager import DeviceConfig, DeviceManager
from foundation.settings import KioskConfig, from_mapping
from kiosk_ui.agent.runtime import KioskRuntime
from kiosk_ui.simulated import Sim

from .conftest import wait_until

K = "K-JOINT"
# (simulator control, open alarms wanted afterwards): each fault alone, then back to fine.
SCRIPT = [
    ({"cmd": "paper", "state": "low"}, {"paper_low"}),
    ({"cmd": "paper", "state": "out"}, {"paper_out"}),
    ({"cmd": "paper", "state": "ok"}, set()),
    ({"cmd": "cover", "open": True}, {"cover_open"}),
    ({"cmd": "cover", "open": False}, set()),
]


@pytest.fixture
def printer_sim(tmp_path):
    sim = Sim("printer", tmp_path / "printer")
    yield sim
    sim.stop()


def _controller_reads(state: handlers.FleetState, status: DeviceStatus, now: float) -> set[str]:
    """What the controller does with one published status: encode as the agent does, parse, handle."""
    payload = topics.encode(device_status.body(K, status))
    state, _ = handlers.handle(state, topics.parse(f"kiosk/v1/{K}/devices/printer", payload), now)
    return {key[1] for key in state.open_alarms if key[0] == K}


def _drive(sim: Sim, read: Callable[[], DeviceStatus]) -> list[tuple[str, set[str], int]]:
    state = handlers.FleetState(rules=alarms.load_rules())
    seen = []
    for i, (control, want) in enumerate(SCRIPT):
        sim.control(control)
        # The producer sees the change (automatic status back or a query); wait for that, not a time.
        wait_until(lambda w=want: _would_raise(read(), w), 10, f"printer status after {control}")
        raised = len([e for e in state.effects if isinstance(e, AlarmChanged) and e.change.action == "raise"])
        open_now = _controller_reads(state, read(), float(i))
        new_raises = len([e for e in state.effects
                          if isinstance(e, AlarmChanged) and e.change.action == "raise"]) - raised
        seen.append((str(control), open_now, new_raises))
    return seen


def _would_raise(status: DeviceStatus, want: set[str]) -> bool:
    rules = alarms.load_rules()
    return {c.key[1] for c in alarms.evaluate(rules, "device", K, "printer", status, {})} == want


def _assert_one_alarm_per_fault(seen):
    assert [s[1] for s in seen] == [want for _, want in SCRIPT], seen
    # One fault, one alarm: never device_error next to the specific rule; clearing raises nothing.
    assert [s[2] for s in seen] == [1, 1, 0, 1, 0], seen


def test_device_manager_status_raises_exactly_the_specific_alarm(printer_sim, tmp_path):
    mgr = DeviceManager([DeviceConfig("printer", "printer", str(printer_sim.link))], data_dir=tmp_path / "stats")
    mgr.start()
    try:
        printer = mgr["printer"]

        def read() -> DeviceStatus:
            printer.check_health("internal")
            return printer.device_status()

        _assert_one_alarm_per_fault(_drive(printer_sim, read))
        assert read().required_action is None  # fine again: null, not "None"
    finally:
        mgr.stop()


def test_headless_runtime_status_raises_exactly_the_specific_alarm(printer_sim, tmp_path):
    cfg = from_mapping(KioskConfig, {"kiosk_id": K, "broker": "mqtt://127.0.0.1:1", "data_dir": str(tmp_path / "k")})
    rt = KioskRuntime(cfg, ports={"printer": str(printer_sim.link)})
    try:
        _assert_one_alarm_per_fault(_drive(printer_sim, lambda: rt.device_status()["printer"]))
    finally:
        rt.printer().close()
        rt.agent.journal.close()


def test_the_real_agents_payloads_are_read_by_the_real_controller(make_controller, make_kiosk):
    ctl = make_controller()
    kiosk = make_kiosk("K-AGENT", ctl.public_key(), telemetry_interval=1)
    wait_until(lambda: (ctl.kiosk("K-AGENT") or {}).get("state") == "online", 10, "birth read")
    rec = ctl.kiosk("K-AGENT")
    assert rec["mode"] == "normal" and rec["versions"]["contract"] == topics.VERSION and rec["site"] == "site-a"
    wait_until(lambda: (ctl.kiosk("K-AGENT") or {}).get("telemetry", {}).get("uptime") is not None, 10, "telemetry")
    wait_until(lambda: ctl.events(kiosk_id="K-AGENT", type="boot")["total"] == 1, 10, "boot event stored")
    ctl.config_set("kiosk:K-AGENT", {"telemetry_interval": 7}, user="test")
    wait_until(lambda: ctl.config_diff("K-AGENT")[0]["in_sync"], 10, "config/reported read as applied")
    assert kiosk.agent.telemetry_interval == 7
    ok = ctl.wait_command(ctl.send_command("K-AGENT", "collect_diagnostics", {}, "test"), 15)
    assert ok["status"] == "succeeded" and ok["result"]["boot_id"] == kiosk.agent.boot_id
    refused = ctl.wait_command(ctl.send_command("K-AGENT", "set_mode", {"mode": "safe"}, "test"), 15)
    assert refused["status"] == "rejected" and "mode" in refused["error"]
    wait_until(lambda: ctl.events(kiosk_id="K-AGENT", type="config_applied")["total"] == 1, 10, "config event")
    kiosk.stop()
    wait_until(lambda: (ctl.kiosk("K-AGENT") or {}).get("reason") == "shutdown", 10, "clean stop read")
    assert not ctl.stats().get("rejected")
