"""A card left on the reader protects its owner: the real kiosk app (Kivy under Xvfb, touches), the
ID-reader simulator on a pseudo-terminal, Mosquitto and the real controller. Resident 1 prints a
certificate and walks away leaving the card; the kiosk says so on the attract screen and, when
the card stays, journals an event for staff; resident 2 starts a certificate and is asked for
their own card: nothing of resident 1 is shown, read, sent or printed."""

from __future__ import annotations

import json
import sqlite3
import time

from hardware_sim.identities import PROFILES
from kiosk_ui.i18n import tr
from tests.kiosk.conftest import finish, kiosk_config, release, run_harness, wait_online, wait_token
from tests.support.receipts import wait_receipts

R1, R2 = PROFILES["resident-1"]["values"], PROFILES["resident-2"]["values"]
MASK1 = R1["id_number"][:4] + "*" * 10 + R1["id_number"][-4:]
MASK2 = R2["id_number"][:4] + "*" * 10 + R2["id_number"][-4:]
HELLO = tr("identify.hello", "zh-CN", name="")


def certificate(card: dict | None = None) -> list:
    steps = [["press", "start"], ["press", "service:certificate"], ["screen", "identify"]]
    return steps + ([["sim", "id_reader", card]] if card else [])


SCRIPT = [
    ["screen", "attract"], ["sync", "online"],
    *certificate({"cmd": "place_card", "profile": "resident-1"}), ["text", MASK1], ["press", "confirm"],
    ["press", "option:residence"], ["screen", "result", 30], ["text", "打印完成"],
    ["press", "finish"], ["press", "skip"], ["screen", "done"], ["text", tr("done.take_card")],
    ["press", "home"], ["screen", "attract"], ["wiped"],
    # The card stays: a clear prompt on the attract screen, then (a minute later) an event for staff.
    ["text", tr("card_left.detail")], ["idle", 65], ["sync", "event"],
    # The next resident: asked to place their own card; resident 1's card is not read.
    *certificate(), ["text", tr("identify.card_left_on")],
    ["no_text", MASK1], ["no_text", HELLO], ["wiped_identity"],
    ["sim", "id_reader", {"cmd": "remove_card"}], ["cleared", "id_reader"],
    ["sim", "id_reader", {"cmd": "place_card", "profile": "resident-2"}],
    ["text", MASK2], ["no_text", MASK1], ["press", "confirm"], ["press", "option:residence"],
    ["screen", "result", 30], ["text", "打印完成"], ["press", "finish"], ["press", "skip"], ["screen", "done"],
    ["press", "home"], ["screen", "attract"], ["text", tr("card_left.detail")],
    # Resident 2 comes back for the card: the prompt goes.
    ["sim", "id_reader", {"cmd": "remove_card"}], ["no_text", tr("card_left.detail")],
    # A queue ticket uses no card: no reminder to take one.
    ["press", "start"], ["press", "service:queue_ticket"], ["press", "option:general"], ["screen", "result"],
    ["press", "finish"], ["press", "skip"], ["screen", "done"], ["no_text", tr("done.take_card")],
    ["press", "home"], ["screen", "attract"],
]


def test_a_card_left_behind_serves_nobody_else(broker, controller, sniffer, procs, tmp_path, artifacts):
    p = run_harness(procs, tmp_path, SCRIPT, artifacts=artifacts, tag="left-card",
                    config=kiosk_config(tmp_path, broker.url, public_key=controller.public_key()))
    wait_online(controller)
    wait_token(p, "online")
    release(p, "online")
    wait_token(p, "event")
    deadline = time.monotonic() + 30
    while not (events := controller.events(kiosk_id="k-ui", type="card_left_behind")["items"]):
        assert time.monotonic() < deadline, "no card_left_behind event reached the controller"
        time.sleep(0.2)
    assert len(events) == 1 and events[0]["body"]["reader"] == "id_reader", events
    release(p, "event")
    finish(p)

    db = sqlite3.connect(tmp_path / "controller" / "controller.sqlite3")
    assert db.execute("SELECT holder_name, id_masked FROM svc_certificates ORDER BY rowid").fetchall() == [
        (R1["name"], MASK1), (R2["name"], MASK2)]
    receipts = [r.read_text(encoding="utf-8") for r in wait_receipts(tmp_path / "kiosk" / "receipts", 2)]
    certs = [r for r in receipts if "KIOSK-CERT" in r or MASK1 in r or MASK2 in r]
    assert len(certs) == 2, receipts
    # The paper names its holder once, in full, next to the masked number; never the other resident.
    assert certs[0].count(R1["name"]) == 1 and MASK1 in certs[0] and R2["name"] not in certs[0]
    assert certs[1].count(R2["name"]) == 1 and MASK2 in certs[1] and R1["name"] not in certs[1]
    for text in receipts:
        assert R1["id_number"] not in text and R2["id_number"] not in text
    # Nothing of resident 1 travels after their session: one certificate request carries their name.
    requests = [payload.decode() for topic, payload in sniffer if topic.endswith("svc/request")]
    assert sum(R1["name"] in r for r in requests) == 1 and sum(R2["name"] in r for r in requests) == 1
    for topic, payload in sniffer:
        if topic.endswith("/events"):
            body = json.loads(payload)
            assert R1["name"] not in json.dumps(body, ensure_ascii=False) and R1["id_number"] not in payload.decode()
