"""SupervisorSim in-process (no pty): virtual clock, reboots, safe mode, control errors."""

from __future__ import annotations

import base64
import hashlib

import pytest

from firmware import VERSION
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


def pump(sim: SupervisorSim, host: L.Link, start: float, seconds: float) -> list[L.Frame]:
    """Run host and simulator together for ``seconds``; returns the replies the host got."""
    replies = []
    t = start
    while t < start + seconds:
        ms = int(t * 1000)
        data = host.poll(ms)
        for f in host.receive(sim.on_bytes(data, t) if data else sim.tick(t), ms):
            if f.mtype & L.REPLY:
                replies.append(f)
            elif f.seq:
                host.respond(f)
        t += 0.01
    return replies


def test_protocol_1_board_speaks_1_until_its_flash_changes_and_it_resets():
    sim = SupervisorSim(protocol=1)
    host = L.Link(seq0=40, versions=L.V1 | L.V2)
    host.send(L.HELLO)
    (hello,) = pump(sim, host, 1.0, 1.0)
    assert hello.version == 1 and hello.body()["fw"] == "1.1.0" and hello.body()["proto"] == 1
    assert sim.core.link.decoder.errors == {"version": 1}  # the first try, in protocol 2
    assert [(n["fw"], n["proto"]) for n in sim.drain_notes() if n.get("ev") == "boot"] == [("1.1.0", 1)]
    sim.control({"cmd": "reboot", "cause": "soft"}, 2.0)
    host.send(L.HELLO)
    assert [r.body()["proto"] for r in pump(sim, host, 2.0, 1.0)] == [1], "a reboot alone changes nothing"

    data = b"print('new')\n"
    host.send(L.FILE_WRITE, {"path": "main.py", "off": 0, "data": base64.b64encode(data).decode()})
    host.send(L.FILE_COMMIT, {"path": "main.py", "sha256": hashlib.sha256(data).hexdigest()})
    host.send(L.RESET)
    replies = pump(sim, host, 3.0, 1.0)
    assert [r.body() for r in replies][-1] == {"reset": True} and all(r.version == 1 for r in replies)
    host.send(L.HELLO)
    (hello,) = pump(sim, host, 4.0, 1.0)
    assert hello.version == 2 and hello.body()["proto"] == 2 and hello.body()["fw"] == VERSION
    assert host.peer == 2
    boots = [(n["fw"], n["proto"]) for n in sim.drain_notes() if n.get("ev") == "boot"]
    assert boots == [("1.1.0", 1), (VERSION, 2)], "the reboot, then the reset into the new firmware"


def test_protocol_must_be_1_or_2():
    with pytest.raises(ValueError, match="protocol must be 1"):
        SupervisorSim(protocol=3)
