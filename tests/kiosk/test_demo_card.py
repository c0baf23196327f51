"""The demo kiosk's card buttons: "place a demo card" puts the fictitious card on the simulated
reader, "remove the demo card" takes it off again. Checked on the reader itself, through its
control socket (the channel scripts/demo-fault uses), with the real app under Xvfb."""

from __future__ import annotations

import time

from hardware_sim.control_socket import send
from hardware_sim.identities import PROFILES
from tests.kiosk.conftest import finish, kiosk_config, run_harness

NAME = PROFILES["resident-1"]["values"]["name"]


def _card_on_reader(sock, want, timeout: float = 10.0):
    deadline = time.monotonic() + timeout
    while True:
        card = send(sock, {"cmd": "status"})["card"]
        if card == want or time.monotonic() > deadline:
            return card
        time.sleep(0.05)


def test_place_and_remove_the_demo_card(broker, controller, procs, tmp_path, artifacts):
    steps = [["screen", "attract"], ["press", "start"], ["press", "service:appointment"], ["screen", "identify"],
             ["press", "demo_card"], ["text", NAME[0] + "*" * (len(NAME) - 1)], ["sync", "placed"],
             ["press", "remove_demo_card"], ["sync", "removed"], ["press", "back"]]
    # The appointment service needs the backend, so the kiosk joins a real broker and controller.
    p = run_harness(procs, tmp_path, steps, artifacts=artifacts, tag="demo-card",
                    config=kiosk_config(tmp_path, broker.url, kiosk_id="k-demo-card"))
    sock = tmp_path / "kiosk" / "dev" / "id-reader.ctl"
    p.wait_for(lambda s: s.startswith("WAIT") and "placed" in s, timeout=60)
    assert _card_on_reader(sock, "resident-1") == "resident-1"
    p.proc.stdin.write("placed\n")
    p.proc.stdin.flush()
    p.wait_for(lambda s: s.startswith("WAIT") and "removed" in s, timeout=30)
    assert _card_on_reader(sock, None) is None
    p.proc.stdin.write("removed\n")
    p.proc.stdin.flush()
    finish(p)
