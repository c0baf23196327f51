"""Console actions through a real in-process Controller and a real broker: alarm acknowledgement,
config editor (validation, diff, apply), service selection, notices, live SSE frames, metrics."""

from __future__ import annotations

import json

import paho.mqtt.client as mqtt
import pytest

from contract import topics
from controller.server import Controller
from controller.web import console_reads
from controller.web.app import build_console, create_app
from foundation.settings import ControllerConfig, parse_broker_url
from tests.console.conftest import PASSWORDS, ROLES, login
from tests.support.waiting import wait_until


@pytest.fixture
def live(broker, tmp_path):
    data = tmp_path / "controller-data"
    ctl = Controller(ControllerConfig(broker=parse_broker_url(broker.url), data_dir=data, http="127.0.0.1:0"))
    ctl.start()
    console = build_console(data, ctl)
    for name, pw in PASSWORDS.items():
        console.accounts.add_user(name, ROLES[name], pw)
    app = create_app(console, start_poller=True)
    pub = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, protocol=mqtt.MQTTv5)
    pub.connect("127.0.0.1", broker.port)
    pub.loop_start()

    def status(kiosk_id, **body):
        pub.publish(topics.topic(kiosk_id, "status"), topics.encode(body), 1, True).wait_for_publish(5)

    clients = {}
    yield console, app, status, clients
    for c in clients.values():
        c.__exit__(None, None, None)
    pub.loop_stop()
    pub.disconnect()
    ctl.stop()
    console.accounts.close()
    console_reads.close_all()


def test_offline_kiosk_raises_alarm_operator_acknowledges(live):
    console, app, status, clients = live
    status("gd-1", state="online", mode="normal", boot_id="b1", site="north", versions={})
    status("gd-1", state="offline", reason="lwt")
    otto = clients["otto"] = login(app, "otto")
    alarms = wait_until(lambda: otto.get("/api/v1/alarms").json()["items"], what="offline alarm")
    alarm = alarms[0]
    assert alarm["kiosk_id"] == "gd-1" and alarm["kind"] == "kiosk_offline" and not alarm["acked_by"]
    assert alarm["params"] == {"state": "offline", "reason": "lwt"}  # rule id + params: what a page translates
    assert otto.post("/api/v1/alarms/abc/ack", json={}).status_code == 422
    assert otto.post("/api/v1/alarms/999999/ack", json={}).status_code == 404
    r = otto.post(f"/api/v1/alarms/{alarm['id']}/ack", json={"note": "on my way"})
    assert r.status_code == 200 and r.json()["changed"] is True
    assert otto.get("/api/v1/alarms").json()["items"][0]["acked_by"] == "otto"
    # The fleet view follows the store on its own poll, a moment after the alarm row exists.
    wait_until(lambda: otto.get("/api/v1/kiosks/gd-1").json().get("status") == "offline", what="kiosk shown offline")
    trail = console.backend.audit(limit=10)["items"]
    # One row per acknowledgement, in the one log: the failed one and the real one with its note.
    acks = [(a["target"], a["result"], a["detail"]) for a in trail if a["action"] == "alarm.ack"]
    assert acks == [(f"alarm:{alarm['id']}", "ok", {"note": "on my way"}), ("alarm:999999", "error: no such alarm", {})]
    assert console.accounts.audit_trail(action="alarm.ack")["items"] == [a for a in trail if a["action"] == "alarm.ack"]
    assert 'kiosk_alarms_unacknowledged 0' in otto.get("/metrics").text
    # A kiosk on a contract major this controller does not speak: refused, counted by version.
    status("gd-2", state="online", mode="normal", boot_id="b2", v="2.0")
    wait_until(lambda: 'kiosk_controller_refused_versions_total{version="2.0"} 1' in otto.get("/metrics").text,
         what="refusal counted in the metrics")


def test_config_editor_validates_diffs_then_applies(live):
    console, app, status, clients = live
    ada = clients["ada"] = login(app, "ada")
    csrf = ada.headers["x-csrf-token"]
    bad = ada.post("/config", data={"csrf": csrf, "layer": "fleet", "text": '{"volume": 150}', "action": "preview"})
    assert bad.status_code == 422 and "volume" in bad.text
    broken = ada.post("/config", data={"csrf": csrf, "layer": "fleet", "text": '{"volume": ', "action": "preview"})
    assert broken.status_code == 422 and "line 1" in broken.text
    prev = ada.post("/config", data={"csrf": csrf, "layer": "fleet", "text": '{"volume": 40}', "action": "preview"})
    assert prev.status_code == 200 and "volume" in prev.text and 'value="apply"' in prev.text
    assert console.backend.config_get("fleet", "")["version"] == 0, "preview must not apply"
    done = ada.post("/config", data={"csrf": csrf, "layer": "fleet", "text": '{"volume": 40}', "action": "apply"})
    assert done.status_code == 200
    got = console.backend.config_get("fleet", "")
    assert got["values"] == {"volume": 40} and got["version"] >= 1
    r = ada.put("/api/v1/config/site/north", json={"values": {"brightness": 70}})
    assert r.status_code == 200 and r.json()["applied"] is True
    assert ada.get("/api/v1/config/site/north").json()["values"] == {"brightness": 70}


def test_service_selection_and_notices(live):
    console, app, status, clients = live
    import sqlite3

    from controller.service_backend.tables import ensure_schema

    conn = sqlite3.connect(console.data_dir / "controller.sqlite3")
    ensure_schema(conn)
    conn.close()
    ada = clients["ada"] = login(app, "ada")
    csrf = ada.headers["x-csrf-token"]
    r = ada.post("/services", data={"csrf": csrf, "action": "catalogue", "layer": "fleet",
                                    "service": ["queue_ticket", "appointment"]})
    assert r.status_code == 200, r.text[-500:]
    assert console.backend.config_get("fleet", "")["values"]["services"] == ["queue_ticket", "appointment"]
    r = ada.post("/services", data={"csrf": csrf, "action": "catalogue", "layer": "fleet", "service": ["warp"]})
    assert r.status_code == 422 and "warp" in r.text
    titles = {"title_zh-CN": "停水通知", "title_zh-HK": "停水通知", "title_en": "Water cut notice"}
    r = ada.post("/services", data={"csrf": csrf, "action": "publish", "notice_id": "water-cut", **titles,
                                    "group": ["elderly"]})
    assert r.status_code == 200 and "停水通知" in r.text
    r = ada.post("/services", data={"csrf": csrf, "action": "publish", "notice_id": "half",
                                    "title_zh-CN": "只有中文"})
    assert r.status_code == 422 and "zh-HK" in r.text
    r = ada.post("/services", data={"csrf": csrf, "action": "withdraw", "notice_id": "water-cut"})
    assert r.status_code == 200 and "停水通知" not in r.text
    vera = clients["vera"] = login(app, "vera")
    r = vera.post("/services", data={"csrf": vera.headers["x-csrf-token"], "action": "withdraw", "notice_id": "x"})
    assert r.status_code == 403
    actions = [a["action"] for a in console.accounts.audit_trail()["items"]]
    assert "notice.publish" in actions and "notice.withdraw" in actions and "config.set" in actions  # the catalogue choice, audited once by the controller


def test_live_stream_delivers_changed_kiosk(live):
    console, app, status, clients = live
    clients["vera"] = login(app, "vera")  # the app (and its store poller) runs while a client is open
    status("gd-live", state="online", mode="normal", boot_id="b1", site="north", versions={})
    wait_until(lambda: console.fleet.get("gd-live"), what="kiosk in the console")
    q = []  # frames as a browser's EventSource would receive them from the hub
    import asyncio
    import threading

    loop = asyncio.new_event_loop()
    got = threading.Event()

    async def listen():
        sub = console.hub.subscribe()
        ready.set()
        while True:
            frame = await sub.get()
            q.append(frame)
            if "gd-live" in frame and '"offline"' in frame:
                got.set()
                return

    ready = threading.Event()
    t = threading.Thread(target=lambda: loop.run_until_complete(asyncio.wait_for(listen(), 10)), daemon=True)
    t.start()
    ready.wait(5)
    status("gd-live", state="offline", reason="lwt")
    assert got.wait(10), q
    frame = next(f for f in q if "gd-live" in f and "offline" in f)
    assert frame.startswith("event: kiosk\n")
    row = json.loads(frame.split("data: ", 1)[1])
    assert row["status"] == "offline" and row["reason"] == "lwt"
    t.join(5)
    loop.close()
