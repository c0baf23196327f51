"""End to end: a printer the kiosk cannot reach raises ``device_unreachable`` once held 30 s.

Soak (issue 17): an unplugged or garbled printer showed ``unknown`` and raised no alarm. Here the
real printer simulator (hardware_sim, on a pty) is unplugged and garbled through its control
socket under a real headless kiosk agent, with real Mosquitto and the real controller. The
controller's clock is its parameter: the test moves it past the rule's hold instead of waiting
30 s, and the once-a-second job raises the alarm with no new message from the kiosk.
"""

from __future__ import annotations

import time

import pytest

from hardware_sim.control_socket import send
from kiosk_ui.simulated import control_path

from .conftest import wait_until

K = "K-UNREACH"
KEY = ("device_unreachable", "printer")


def _active(ctl) -> list[tuple[str, str]]:
    return sorted((a["rule"], a["subject"]) for a in ctl.alarms(kiosk_id=K)["items"])


def _fault(ctl) -> str | None:
    return ((ctl.kiosk(K) or {}).get("devices") or {}).get("printer", {}).get("fault")


@pytest.mark.parametrize(("fault", "back", "seen"), [
    ({"cmd": "unplug"}, {"cmd": "replug"}, ("disconnected", "not_answering")),
    ({"cmd": "garble", "rate": 1.0}, {"cmd": "garble", "rate": 0.0}, ("not_answering",)),
])
def test_unreachable_printer_raises_after_the_hold_and_clears_when_back(make_controller, make_kiosk, tmp_path,
                                                                        fault, back, seen):
    skew = [0.0]
    ctl = make_controller(clock=lambda: time.time() + skew[0], telemetry_period=60)
    make_kiosk(K, ctl.public_key(), simulated=True)
    wait_until(lambda: _fault(ctl) == "", 10, "printer status stored, fine")
    socket_path = control_path(tmp_path / f"kiosk-{K}" / "dev", "printer")

    send(socket_path, fault)
    wait_until(lambda: _fault(ctl) in seen, 10, f"printer {seen} stored")
    key = (K, *KEY)
    wait_until(lambda: key in ctl.state.held, 15, "condition held")
    since = ctl.state.held[key]["since"]
    assert _active(ctl) == []  # not yet: the hold has not passed
    skew[0] += 31.0  # the controller's clock past the 30 s hold; the kiosk sends nothing new for it
    wait_until(lambda: _active(ctl) == [KEY], 15, "device_unreachable raised by the tick")
    [alarm] = ctl.alarms(kiosk_id=K)["items"]
    assert alarm["raised_at"] - since >= 30.0 and alarm["severity"] == "major"
    assert alarm["message"].startswith("printer: unreachable (")

    send(socket_path, back)
    wait_until(lambda: _active(ctl) == [], 10, "cleared once the printer answers")
    history = [a["rule"] for a in ctl.alarms(kiosk_id=K, active=None)["items"]]
    assert history == ["device_unreachable"]  # one fault, one alarm: no device_error beside it
