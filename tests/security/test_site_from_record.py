"""A kiosk's site follows its enrolment record, never its birth message (issue 14, item 5):
the real TLS broker, the real controller, a certificate issued for site-1 claiming site-2."""

from __future__ import annotations

import json
import sqlite3

from contract import topics
from controller.store import DB_NAME
from tests.security.conftest import publish
from tests.support.waiting import wait_until


def test_birth_message_cannot_move_a_kiosk_to_another_site(identities, kiosk_client, make_tls_controller, fleet_dir):
    ctl = make_tls_controller()
    a = kiosk_client(identities("kiosk-a", "site-1"), "kiosk-kiosk-a")
    publish(a, topics.topic("kiosk-a", "status"), {"v": 1, "state": "online", "mode": "normal", "site": "site-2"})
    assert wait_until(lambda: (ctl.kiosk("kiosk-a") or {}).get("state") == "online", 10)
    assert ctl.kiosk("kiosk-a")["site"] == "site-1"
    # Counted in the birth's transaction, kept once it committed: a moment after the row is readable.
    assert wait_until(lambda: ctl.stats().get("site_claim_refused") == 1, 10)
    # Residents' requests follow the record too: the queue ticket is numbered at site-1.
    assert not a.subscribe(topics.topic("kiosk-a", "svc/response")).is_failure
    publish(a, topics.topic("kiosk-a", "svc/request"),
            {"v": 1, "service": "queue_ticket", "op": "take", "args": {"counter": "general"}},
            response_topic=topics.topic("kiosk-a", "svc/response"), correlation=b"t1")
    assert wait_until(lambda: a.messages, 10)
    assert json.loads(a.messages[-1][1])["ok"], a.messages[-1][1]
    conn = sqlite3.connect(fleet_dir.root / "controller" / DB_NAME)
    try:
        assert conn.execute("SELECT site FROM svc_tickets WHERE kiosk_id='kiosk-a'").fetchall() == [("site-1",)]
    finally:
        conn.close()


def _call(client, kiosk_id: str, body: dict, corr: bytes) -> dict:
    n = len(client.messages)
    publish(client, topics.topic(kiosk_id, "svc/request"), {"v": 1, **body},
            response_topic=topics.topic(kiosk_id, "svc/response"), correlation=corr)
    assert wait_until(lambda: len(client.messages) > n, 10)
    return json.loads(client.messages[n][1])


def test_a_certificate_is_bound_to_the_issuing_kiosks_site(identities, kiosk_client, make_tls_controller):
    ctl = make_tls_controller()
    kiosks = {}
    for kid, site in (("kiosk-a", "site-1"), ("kiosk-b", "site-2")):
        c = kiosks[kid] = kiosk_client(identities(kid, site), kid)
        assert not c.subscribe(topics.topic(kid, "svc/response")).is_failure
        # Each claims the other's site: the record wins.
        publish(c, topics.topic(kid, "status"), {"v": 1, "state": "online", "site": "site-9"})
    assert wait_until(lambda: all((ctl.kiosk(k) or {}).get("state") == "online" for k in kiosks), 10)
    issued = _call(kiosks["kiosk-a"], "kiosk-a", {"service": "certificate", "op": "issue", "args": {
        "kind": "residence", "holder_name": "测试居民一", "id_masked": "4401**********1234"}}, b"i")
    assert issued["ok"] and issued["data"]["site"] == "site-1"
    code = issued["data"]["qr"]
    there = _call(kiosks["kiosk-b"], "kiosk-b", {"service": "certificate", "op": "verify", "args": {"code": code}}, b"v")
    here = _call(kiosks["kiosk-a"], "kiosk-a", {"service": "certificate", "op": "verify", "args": {"code": code}}, b"w")
    assert (there["data"]["site"], there["data"]["same_site"]) == ("site-1", False)
    assert (here["data"]["site"], here["data"]["same_site"]) == ("site-1", True)
