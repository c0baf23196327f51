"""One kiosk's flood of service requests does not delay another kiosk's answer (issue 14,
item 6): the real TLS broker, the real controller and its fair per-kiosk request queue."""

from __future__ import annotations

import json
import sqlite3

from contract import topics
from controller.store import DB_NAME
from tests.security.conftest import publish
from tests.support.waiting import wait_until

FLOOD = 20_000
TICKET = {"v": 1, "service": "queue_ticket", "op": "take", "args": {"counter": "general"}}


def test_a_flooding_kiosk_is_refused_and_others_are_answered(identities, kiosk_client, make_tls_controller,
                                                             fleet_dir):
    ctl = make_tls_controller()
    a = kiosk_client(identities("kiosk-a"), "kiosk-kiosk-a")
    b = kiosk_client(identities("kiosk-b"), "kiosk-kiosk-b")
    assert not b.subscribe(topics.topic("kiosk-b", "svc/response")).is_failure
    payload = json.dumps(TICKET).encode()
    for _ in range(FLOOD):  # QoS 0: as fast as the attacker's link allows
        a.c.publish(topics.topic("kiosk-a", "svc/request"), payload, qos=0)
    publish(a, topics.topic("kiosk-a", "status"), {"v": 1, "state": "online", "mode": "normal"})  # flood sent
    publish(b, topics.topic("kiosk-b", "svc/request"), TICKET, response_topic=topics.topic("kiosk-b", "svc/response"),
            correlation=b"b-1")
    assert wait_until(lambda: b.messages, 20), "kiosk B's request was not answered behind A's flood"
    served_for_a = _tickets(fleet_dir, "kiosk-a")
    assert json.loads(b.messages[0][1])["ok"]
    # B was served long before A's 20,000 calls were: A's excess was refused at once, counted.
    assert served_for_a < FLOOD // 2
    assert wait_until(lambda: ctl.counts.get("svc_refused:busy", 0) > 0, 10)


def _tickets(fleet_dir, kiosk_id: str) -> int:
    conn = sqlite3.connect(fleet_dir.root / "controller" / DB_NAME, timeout=10)
    try:
        return conn.execute("SELECT COUNT(*) FROM svc_tickets WHERE kiosk_id=?", (kiosk_id,)).fetchone()[0]
    finally:
        conn.close()
