"""The demo command's fleet as the README starts it: a fleet made with init-fleet, a mutual-TLS
broker, kiosks enrolled with tokens (so commands work at once), faults on demand, a clean stop,
and a second start, on a plain broker, that reuses the fleet."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import tomllib

import paho.mqtt.client as mqtt

from tests.support.broker import free_port
from tests.support.processes import REPO, Proc
from tests.support.receipts import wait_receipts
from tests.support.waiting import wait_until

BIN = os.path.dirname(sys.executable)
IDS = [f"GD-DEMO-{i:04d}" for i in (1, 2, 3)]


def kioskctl(data, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run([os.path.join(BIN, "kioskctl"), "--data-dir", str(data / "controller"), *args],
                          capture_output=True, text=True, timeout=60)


def start_demo(data, port: int, procs, *extra: str) -> Proc:
    # Exactly as the README starts it (scripts/demo runs the idempotent bootstrap first).
    demo = Proc([str(REPO / "scripts" / "demo"), "--no-window", "--data-dir", str(data),
                 "--mqtt-port", str(port), "--http", f"127.0.0.1:{free_port()}", *extra])
    procs.append(demo)
    demo.wait_for(lambda s: "Press Ctrl-C" in s, timeout=90)
    deadline = time.monotonic() + 45
    states = {}
    while time.monotonic() < deadline:
        r = kioskctl(data, "status", "--json")
        if r.returncode == 0:
            states = {k["kiosk_id"]: k["state"] for k in json.loads(r.stdout)}
            if len(states) == 3 and set(states.values()) == {"online"}:
                break
        time.sleep(0.5)
    assert states == dict.fromkeys(IDS, "online")
    return demo


def stop_demo(demo: Proc, data) -> None:
    demo.signal(signal.SIGINT)
    assert demo.wait_exit(60) == 0
    demo.wait_for(lambda s: "demo fleet stopped" in s, timeout=5)
    # Every process the demo started (broker, controller, agents, their simulators) is gone.
    deadline = time.monotonic() + 10
    while True:
        leftovers = subprocess.run(["pgrep", "-af", str(data)], capture_output=True, text=True).stdout.strip()
        if not leftovers or time.monotonic() > deadline:
            break
        time.sleep(0.2)
    assert leftovers == ""


def wait_alarms(data, kiosk: str, done, timeout: float = 30) -> set[tuple[str, str]]:
    """The kiosk's active alarms as (rule, subject), once ``done`` of them holds (or at the timeout)."""
    deadline = time.monotonic() + timeout
    while True:
        r = kioskctl(data, "alarms", "list", "--kiosk", kiosk, "--json")
        assert r.returncode == 0, r.stderr
        active = {(a["rule"], a["subject"]) for a in json.loads(r.stdout)["items"]}
        if done(active) or time.monotonic() > deadline:
            return active
        time.sleep(0.3)


def plain_connect_refused(port: int) -> bool:
    c = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id="intruder", protocol=mqtt.MQTTv5)
    closed = []
    c.on_disconnect = lambda *a: closed.append(a[3])
    try:
        c.connect("127.0.0.1", port, keepalive=5)
        c.loop_start()
        # "Not connected" means something only once the broker has answered: accepted, or closed.
        wait_until(lambda: c.is_connected() or closed, 15, "the TLS broker's answer to plain MQTT")
        return not c.is_connected()
    except OSError:
        return True
    finally:
        c.loop_stop()


def test_demo_is_a_small_real_deployment(tmp_path, procs):
    data, port = tmp_path / "demo", free_port()
    demo = start_demo(data, port, procs)
    assert any("fleet created" in s for s in demo.stdout_lines)
    assert any("enrolling GD-DEMO-0001" in s for s in demo.stdout_lines)
    # Built with the technician's tools: the generated TLS listener, enrolled kiosks pinning the key.
    conf = (data / "broker" / "demo-mosquitto.conf").read_text()
    assert "require_certificate true" in conf and f"acl_file {data / 'broker' / 'acl'}" in conf
    assert plain_connect_refused(port)
    pub = (data / "controller" / "signing_key.pub").read_text().strip()
    for kid in IDS:
        cfg = tomllib.loads((data / "kiosks" / kid / "kiosk.toml").read_text())
        assert cfg["controller_public_key"] == pub and cfg["kiosk_id"] == kid
        assert cfg["broker"].startswith("mqtts://") and os.path.exists(cfg["cert_file"])
    # Commands work from the first minute.
    r = kioskctl(data, "command", "send", "GD-DEMO-0002", "test_print", "--wait", "--json")
    assert r.returncode == 0 and json.loads(r.stdout)["status"] == "succeeded", r.stdout + r.stderr
    wait_receipts(data / "kiosks" / "GD-DEMO-0002" / "receipts")
    # Faults on demand, through the simulator's control socket.
    fault = [sys.executable, str(REPO / "scripts" / "demo_fault.py"), "--data-dir", str(data)]
    r = subprocess.run([*fault, "GD-DEMO-0001"], capture_output=True, text=True, timeout=30)
    assert r.stdout.split() == ["printer", "supervisor"]
    r = subprocess.run([*fault, "GD-DEMO-0001", "printer", '{"cmd": "paper", "state": "out"}'],
                       capture_output=True, text=True, timeout=30)
    assert r.returncode == 0 and json.loads(r.stdout) == {"ok": True, "cmd": "paper", "paper": "out"}
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        show = json.loads(kioskctl(data, "kiosks", "show", "GD-DEMO-0001", "--json").stdout)
        if show["devices"].get("printer", {}).get("fault") == "paper_out":
            break
        time.sleep(0.3)
    assert show["devices"]["printer"]["fault"] == "paper_out"
    # A headless kiosk's supervisor board (the real firmware core): its door is the enclosure door.
    door = lambda kiosk, is_open: subprocess.run(  # noqa: E731
        [*fault, kiosk, "supervisor", json.dumps({"cmd": "door", "open": is_open})],
        capture_output=True, text=True, timeout=30)
    r = door("GD-DEMO-0003", True)
    assert r.returncode == 0 and json.loads(r.stdout)["open"] is True, r.stdout + r.stderr
    assert wait_alarms(data, "GD-DEMO-0003", lambda a: ("door_open", "supervisor") in a) == {("door_open", "supervisor")}
    assert door("GD-DEMO-0003", False).returncode == 0
    assert wait_alarms(data, "GD-DEMO-0003", lambda a: not a) == set()  # closed: the alarm clears
    history = json.loads(kioskctl(data, "alarms", "list", "--history", "--kiosk", "GD-DEMO-0003", "--json").stdout)["items"]
    assert [(a["rule"], a["subject"]) for a in history] == [("door_open", "supervisor")]
    bad = subprocess.run([*fault, "GD-DEMO-0001", "printer", '{"cmd": "paper", "state": "soggy"}'],
                         capture_output=True, text=True, timeout=30)
    assert bad.returncode == 1 and json.loads(bad.stdout)["ok"] is False
    for args in (["GD-NOPE", "printer", "{}"], ["GD-DEMO-0001", "toaster", "{}"], ["GD-DEMO-0001", "printer", "x"]):
        r = subprocess.run([*fault, *args], capture_output=True, text=True, timeout=30)
        assert r.returncode == 2 and r.stderr.startswith("error: ") and "Traceback" not in r.stderr
    stop_demo(demo, data)

    # Again, on a plain broker for development: the same fleet, the same enrolled kiosks, keys still pinned.
    ca = (data / "ca" / "ca.crt.pem").read_bytes()
    demo = start_demo(data, port, procs, "--plain")
    assert not any("fleet created" in s or "enrolling" in s for s in demo.stdout_lines)
    assert any("mqtt://127.0.0.1" in s and "plain TCP" in s for s in demo.stdout_lines)
    assert (data / "ca" / "ca.crt.pem").read_bytes() == ca
    r = kioskctl(data, "command", "send", "GD-DEMO-0003", "set_mode", "--args", '{"mode": "maintenance"}', "--wait")
    assert r.returncode == 0 and "SUCCEEDED" in r.stdout, r.stdout + r.stderr
    stop_demo(demo, data)


def test_demo_refuses_taken_ports_before_building_anything(tmp_path):
    import socket

    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        busy = taken.getsockname()[1]
        free = f"127.0.0.1:{free_port()}"
        for flags, word in ((["--mqtt-port", str(busy), "--http", free], "--mqtt-port"),
                            (["--mqtt-port", str(free_port()), "--http", f"127.0.0.1:{busy}"], "--http")):
            r = subprocess.run([sys.executable, str(REPO / "scripts" / "demo_fleet.py"), "--no-window", "--data-dir",
                                str(tmp_path / "d"), *flags], capture_output=True, text=True, timeout=60)
            assert r.returncode == 1 and word in r.stderr and "Traceback" not in r.stderr, r.stderr
            assert not (tmp_path / "d" / "ca").exists()
