"""SupervisorSim in-process (no pty): virtual clock, reboots, safe mode, control errors."""

from __future__ import annotations

import pytest

from firmware import link as L
from hardware_sim.pty_device import SimControlError
from hardware_sim.supervisor import SupervisorSim


def test_short_reboots_end_in_safe_mode_and_a_long_boot_clears_it():
    sim = SupervisorSim()
    now = 100.0
    sim.tick(now)
    for _ in range(3):
        reply = sim.control({"cmd": "reboot", "cause": "watchdog"}, now)
        now += 1
    assert reply == {"reset": "watchdog", "boots": 4, "safe": True}
    assert sim.control({"cmd": "status"}, now)["status"]["safe"] is True
    sim.control({"cmd": "advance", "seconds": 61}, now)
    assert sim.control({"cmd": "reboot", "cause": "soft"}, now)["safe"] is False


def test_time_scale_and_advance_move_the_virtual_clock_forward_only():
    sim = SupervisorSim()
    sim.tick(10.0)
    assert sim.control({"cmd": "time_scale", "factor": 100}, 10.0)["factor"] == 100
    sim.tick(11.0)  # one real second = 100 virtual seconds
    t = sim.control({"cmd": "status"}, 11.0)["t_ms"]
    assert 100_000 <= t <= 100_100
    assert sim.control({"cmd": "advance", "seconds": 30}, 11.0)["t_ms"] >= t + 30_000
    with pytest.raises(SimControlError):
        sim.control({"cmd": "advance", "seconds": -1}, 11.0)
    with pytest.raises(SimControlError):
        sim.control({"cmd": "door", "open": "yes"}, 11.0)
    with pytest.raises(SimControlError):
        sim.control({"cmd": "fly"}, 11.0)


def test_sim_answers_frames_with_the_real_core():
    sim = SupervisorSim()
    host = L.Link(seq0=40)
    host.send(L.HELLO)
    out = sim.on_bytes(host.poll(0), 1.0)
    replies = [f for f in host.receive(out, 0) if f.mtype == L.HELLO | L.REPLY]
    assert replies and replies[0].body()["board"] == "sim-0001"
    notes = sim.drain_notes()
    assert notes[0]["ev"] == "boot" and notes[0]["note"] == "event"
