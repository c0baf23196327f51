"""The demo command's fleet: 3 simulated kiosks come online and everything stops on Ctrl-C."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time

from tests.support.broker import free_port
from tests.support.processes import REPO, Proc

BIN = os.path.dirname(sys.executable)


def test_demo_fleet_comes_up_and_stops_cleanly(tmp_path, procs):
    data = tmp_path / "demo"
    demo = Proc([sys.executable, str(REPO / "scripts" / "demo_fleet.py"), "--no-window", "--data-dir", str(data),
                 "--mqtt-port", str(free_port()), "--http", f"127.0.0.1:{free_port()}"])
    procs.append(demo)
    demo.wait_for(lambda s: "Press Ctrl-C" in s, timeout=60)
    deadline = time.monotonic() + 45
    states = {}
    while time.monotonic() < deadline:
        r = subprocess.run([os.path.join(BIN, "kioskctl"), "--data-dir", str(data / "controller"), "status", "--json"],
                           capture_output=True, text=True, timeout=30)
        if r.returncode == 0:
            states = {k["kiosk_id"]: k["state"] for k in json.loads(r.stdout)}
            if len(states) == 3 and set(states.values()) == {"online"}:
                break
        time.sleep(0.5)
    assert states == {f"GD-DEMO-{i:04d}": "online" for i in (1, 2, 3)}
    demo.signal(signal.SIGINT)
    assert demo.proc.wait(60) == 0
    demo.wait_for(lambda s: "demo fleet stopped" in s, timeout=5)
    # Every process the demo started (broker, controller, agents, their simulators) is gone.
    deadline = time.monotonic() + 10
    while True:
        leftovers = subprocess.run(["pgrep", "-af", str(data)], capture_output=True, text=True).stdout.strip()
        if not leftovers or time.monotonic() > deadline:
            break
        time.sleep(0.2)
    assert leftovers == ""
