"""A kiosk's device status redelivered late (the real agent's own earlier message, replayed after
its newer one) through a real in-process Controller and a real broker: the console keeps the newer
state, no alarm is open, and ``/metrics`` counts the late one as ``device_superseded``."""

from __future__ import annotations

import json

from contract import device_status
from foundation.settings import KioskConfig, from_mapping
from kiosk_ui.agent.agent import KioskAgent
from tests.console.conftest import login
from tests.console.test_controller_actions import live  # noqa: F401 - the fixture
from tests.fleet.conftest import Raw
from tests.support.waiting import wait_until

PAPER_OUT = device_status.build("idle", device_status.printer_detail(known=True, paper="out"))
PAPER_OK = device_status.build("idle", device_status.printer_detail(known=True, paper="ok"))


def test_a_late_paper_out_is_ignored_and_counted(live, broker, tmp_path):  # noqa: F811 - the fixture
    _console, app, _status, clients = live
    watcher = Raw(broker, "watcher")
    agent = KioskAgent(from_mapping(KioskConfig, {"kiosk_id": "gd-7", "broker": broker.url, "keepalive": 2,
                                                  "data_dir": str(tmp_path / "kiosk")}))
    printer = {"printer": PAPER_OUT}
    agent.device_status = lambda: dict(printer)
    try:
        watcher.subscribe("kiosk/v1/gd-7/devices/printer")
        agent.start(wait=10)
        wait_until(lambda: agent.connected, 15, "the kiosk connected")
        agent.poll_devices()
        watcher.wait_json(lambda _t, b: b.get("fault") == "paper_out" and "ts" in b, 10)
        printer["printer"] = PAPER_OK
        agent.poll_devices()
        watcher.wait_json(lambda _t, b: b.get("fault") == "" and "ts" in b, 10)
        otto = clients["otto"] = login(app, "otto")
        wait_until(lambda: 'kiosk_controller_received_total' in otto.get("/metrics").text
                   and not otto.get("/api/v1/alarms").json()["items"]
                   and otto.get("/api/v1/kiosks/gd-7").json().get("devices", {}).get("printer", {}).get("detail") == "",
                   15, "paper back stored")
        # The broker redelivers the agent's paper-out message (a QoS 1 resend) after paper back.
        late = next(p for t, p in watcher.messages if json.loads(p).get("fault") == "paper_out")
        watcher.publish("kiosk/v1/gd-7/devices/printer", bytes(late))
        wait_until(lambda: "kiosk_controller_device_superseded_total 1" in otto.get("/metrics").text, 15,
                   "the late one counted")
        assert not otto.get("/api/v1/alarms").json()["items"]
        assert otto.get("/api/v1/kiosks/gd-7").json()["devices"]["printer"]["detail"] == ""
    finally:
        agent.stop()
        watcher.close()
