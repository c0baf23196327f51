"""The host driver against ``python -m hardware_sim supervisor`` (real firmware core, real pty)."""

from __future__ import annotations

import json
import time

import pytest

from device_drivers.supervisor import SupervisorDriver, SupervisorEvent, SupervisorRefused
from firmware import VERSION
from foundation.backoff import Backoff
from foundation.errors import DeviceTimeout, LocalProtocolError, TransportError
from tests.support.waiting import wait_until


def control(proc, obj: dict) -> dict:
    """Send a control command; replies start with {"ok", notes with {"note"."""
    proc.proc.stdin.write(json.dumps(obj) + "\n")
    proc.proc.stdin.flush()
    return json.loads(proc.wait_for(lambda s: s.startswith('{"ok"')))


def notes(proc, kind: str | None = None) -> list[dict]:
    out = []
    for line in list(proc.stdout_lines):
        if line.startswith('{"note"'):
            note = json.loads(line)
            if kind is None or note["note"] == kind:
                out.append(note)
    return out


def wait_notes(proc, kind: str, pred, count: int, timeout: float = 15.0) -> list[dict]:
    """Notes are printed after the control reply, so wait for them to show up."""
    deadline = time.monotonic() + timeout
    while True:
        got = [n for n in notes(proc, kind) if pred(n)]
        if len(got) >= count or time.monotonic() > deadline:
            return got
        time.sleep(0.02)


def wait_event(driver: SupervisorDriver, pred, timeout: float = 15.0) -> SupervisorEvent:
    deadline = time.monotonic() + timeout
    seen = []
    while time.monotonic() < deadline:
        try:
            ev = driver.events.get(timeout=0.05)
        except Exception:
            continue
        seen.append(ev)
        if pred(ev):
            return ev
    raise AssertionError(f"no matching event; saw {seen}")


def watchdog(action: str):
    return lambda ev: ev.kind == "watchdog" and ev.fields.get("action") == action


@pytest.fixture
def board(sim):
    proc, link = sim("supervisor")
    driver = SupervisorDriver(str(link), backoff=Backoff(base=0.05, cap=0.2))
    yield proc, driver
    driver.close()


def test_hello_reports_version_board_reset_cause_and_boots(board):
    proc, drv = board
    info = drv.hello()
    assert (info.firmware, info.protocol, info.board_id) == (VERSION, 2, "sim-0001")
    assert (info.reset_cause, info.boot_count, info.safe_mode) == ("power_on", 1, False)
    boot = wait_event(drv, lambda ev: ev.kind == "boot")
    assert boot.fields["reset"] == "power_on"


def test_heartbeat_loss_power_cycles_the_host_then_it_recovers(board):
    proc, drv = board
    assert drv.heartbeat()["state"] == "ok"
    control(proc, {"cmd": "advance", "seconds": 119})
    assert drv.heartbeat()["state"] == "ok"  # heartbeat returns just before the warning
    control(proc, {"cmd": "advance", "seconds": 120})
    wait_event(drv, watchdog("warning"))
    control(proc, {"cmd": "advance", "seconds": 60})
    wait_event(drv, watchdog("power_off"))
    control(proc, {"cmd": "advance", "seconds": 10})
    wait_event(drv, watchdog("power_on"))
    host = wait_notes(proc, "relay", lambda n: n["relay"] == "host", 2)
    assert [n["on"] for n in host] == [False, True]
    assert 10_000 <= host[1]["t_ms"] - host[0]["t_ms"] <= 10_000 + 50  # one sim step
    assert drv.heartbeat()["state"] == "ok"


def test_three_power_cycles_an_hour_then_unrecoverable(board):
    proc, drv = board
    for _ in range(3):
        control(proc, {"cmd": "advance", "seconds": 190})
    control(proc, {"cmd": "advance", "seconds": 180})
    wait_event(drv, watchdog("unrecoverable"), timeout=10)
    offs = wait_notes(proc, "relay", lambda n: n["relay"] == "host" and not n["on"], 3)
    assert len(offs) == 3
    assert drv.status().host == "unrecoverable"
    drv.heartbeat()
    assert drv.status().host == "ok"


def test_maintenance_hold_blocks_power_cycle_until_it_expires(board):
    proc, drv = board
    assert drv.hold(600) == 600
    control(proc, {"cmd": "advance", "seconds": 599})
    assert drv.status().hold_s == 1
    control(proc, {"cmd": "advance", "seconds": 2})
    wait_event(drv, watchdog("hold_expired"))
    assert not [n for n in notes(proc, "relay") if n["relay"] == "host"]
    control(proc, {"cmd": "advance", "seconds": 180})
    wait_event(drv, watchdog("power_off"))


def test_enclosure_events_and_status(board):
    proc, drv = board
    control(proc, {"cmd": "temperature", "c": 42.0, "rh": 55.0})
    control(proc, {"cmd": "advance", "seconds": 6})
    ev = wait_event(drv, lambda e: e.kind == "temperature" and e.fields["c"] == 42.0)
    assert ev.fields["rh"] == 55.0
    control(proc, {"cmd": "door", "open": True})
    assert wait_event(drv, lambda e: e.kind == "door").fields == {"open": True}
    control(proc, {"cmd": "tamper", "active": True})
    assert wait_event(drv, lambda e: e.kind == "tamper").fields == {"active": True}
    control(proc, {"cmd": "presence"})
    wait_event(drv, lambda e: e.kind == "presence")
    st = drv.status()
    assert (st.celsius, st.humidity, st.sensor) == (42.0, 55.0, "ok")
    assert st.door_open is True and st.tamper is True
    assert st.fan_percent in (51, 52)  # on above 40 C, ramping to full at 50 C


def test_stuck_sensor_is_reported_and_the_board_keeps_serving(board):
    proc, drv = board
    control(proc, {"cmd": "advance", "seconds": 1})
    control(proc, {"cmd": "sensor", "stuck": "bus"})
    control(proc, {"cmd": "advance", "seconds": 20})
    ev = wait_event(drv, lambda e: e.kind == "sensor" and e.fields["status"] == "failed")
    assert ev.fields["error"] == "i2c"
    st = drv.status()
    assert st.sensor == "failed" and st.celsius is None and st.fan_percent == 100
    assert drv.heartbeat()["state"] == "ok"


def test_relay_pulse_beacon_and_refusals(board):
    proc, drv = board
    assert drv.relay_pulse("printer", 0.5) == 2000  # minimum off time
    with pytest.raises(SupervisorRefused) as exc:
        drv.relay_pulse("printer", 3)
    assert exc.value.reason == "busy"
    with pytest.raises(SupervisorRefused, match="protected_relay"):
        drv.relay_pulse("host", 3)
    with pytest.raises(SupervisorRefused, match="unknown_relay"):
        drv.relay_pulse("toaster", 3)
    with pytest.raises(LocalProtocolError):
        drv.set_beacon("disco")
    drv.set_beacon("out_of_service")
    assert drv.status().beacon == "out_of_service"
    control(proc, {"cmd": "advance", "seconds": 2})
    printer = [n["on"] for n in wait_notes(proc, "relay", lambda n: n["relay"] == "printer", 2)]
    assert printer == [False, True]


def test_service_mode_request_reaches_the_board(board):
    proc, drv = board
    assert drv.enter_service_mode(300) == 300
    assert wait_notes(proc, "service", lambda n: True, 1)[0]["seconds"] == 300
    with pytest.raises(SupervisorRefused, match="bad_args"):
        drv.enter_service_mode(5)


def test_corrupted_frames_are_counted_and_retried(sim):
    proc, link = sim("supervisor")
    with SupervisorDriver(str(link), tries=10, retry_ms=100) as drv:
        # ~45 % of the ~300-byte status replies arrive corrupted; ten tries see each through.
        control(proc, {"cmd": "garble", "rate": 0.002})
        for _ in range(10):
            assert drv.status().host == "ok"
        control(proc, {"cmd": "garble", "rate": 0})
        assert sum(drv.link_errors.values()) >= 1


def test_board_reboot_and_unplug_replug(board):
    proc, drv = board
    drv.hello()
    control(proc, {"cmd": "reboot", "cause": "watchdog"})
    ev = wait_event(drv, lambda e: e.kind == "boot" and e.fields["reset"] == "watchdog")
    assert ev.fields["boots"] == 2
    info = drv.hello()
    assert (info.reset_cause, info.boot_count) == ("watchdog", 2)
    control(proc, {"cmd": "unplug"})
    wait_until(lambda: not drv.connected, 15, "the driver to see the unplug")
    with pytest.raises(TransportError):
        drv.heartbeat()
    control(proc, {"cmd": "replug"})
    wait_until(lambda: drv.reconnects >= 1, 15, "the driver to reconnect")
    assert drv.heartbeat()["state"] == "ok"


def test_silent_port_gives_device_timeout_never_a_guess():
    with SupervisorDriver("loop://", retry_ms=30, tries=3) as drv:
        with pytest.raises(DeviceTimeout):
            drv.status()


def host_offs(proc) -> int:
    return len([n for n in notes(proc, "relay") if n["relay"] == "host" and not n["on"]])


def test_reboot_keeps_the_power_cycle_limit(sim, tmp_path):
    """The history is in the board's flash (OUT/flash): a board reset does not restart the hour."""
    out = tmp_path / "board"
    proc, link = sim("supervisor", out=out)
    history = out / "flash" / "hostwatch.json"
    with SupervisorDriver(str(link), backoff=Backoff(base=0.05, cap=0.2)) as drv:
        for _ in range(3):
            control(proc, {"cmd": "advance", "seconds": 190})
        control(proc, {"cmd": "advance", "seconds": 180})
        wait_event(drv, watchdog("unrecoverable"), timeout=10)
        assert [boot for boot, _ms in json.loads(history.read_text())] == [1, 1, 1]
        assert "hostwatch.json" in control(proc, {"cmd": "files"})["files"]

        assert control(proc, {"cmd": "reboot", "cause": "watchdog"})["boots"] == 2
        wait_event(drv, lambda e: e.kind == "boot" and e.fields["reset"] == "watchdog")
        control(proc, {"cmd": "advance", "seconds": 180})
        wait_event(drv, watchdog("unrecoverable"))
        assert drv.status().host == "unrecoverable"
        assert host_offs(proc) == 3  # no fourth power cycle after the reset

        # Only once this boot has run an hour do the earlier boot's power cycles stop counting.
        drv.heartbeat()
        control(proc, {"cmd": "advance", "seconds": 3240})  # 3,420 s of uptime, silent again
        wait_event(drv, watchdog("unrecoverable"))
        assert host_offs(proc) == 3
        drv.heartbeat()
        control(proc, {"cmd": "advance", "seconds": 180})
        wait_event(drv, watchdog("power_off"))
        # The fourth power cycle's relay note (a non-empty list alone: the three earlier ones).
        assert len(wait_notes(proc, "relay", lambda n: n["relay"] == "host" and not n["on"], 4)) == 4
        assert [boot for boot, _ms in json.loads(history.read_text())] == [2]
    proc.stop()

    # The simulator restarted on the same flash, with three power cycles of boot 2 on record:
    # its boot counter (kept in memory) starts at 1 again, and they count as an earlier boot's.
    history.write_text("[[2, 3600000], [2, 3600000], [2, 3600000]]")
    proc, link = sim("supervisor", out=out)
    with SupervisorDriver(str(link), backoff=Backoff(base=0.05, cap=0.2)) as drv:
        assert drv.hello().boot_count == 1
        control(proc, {"cmd": "advance", "seconds": 180})
        wait_event(drv, watchdog("unrecoverable"))
        assert host_offs(proc) == 0


def test_corrupt_history_is_a_fault_not_a_crash(sim, tmp_path):
    out = tmp_path / "board"
    (out / "flash").mkdir(parents=True)
    (out / "flash" / "hostwatch.json").write_bytes(b"\x00\xffnot json")
    proc, link = sim("supervisor", out=out)
    with SupervisorDriver(str(link), backoff=Backoff(base=0.05, cap=0.2)) as drv:
        st = drv.status()
        assert st.host == "ok" and st.extra["faults"] == 1
        control(proc, {"cmd": "advance", "seconds": 180})
        wait_event(drv, watchdog("power_off"))
    assert len(json.loads((out / "flash" / "hostwatch.json").read_text())) == 1
