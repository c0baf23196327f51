"""The attack suite (issue 14, item 9): what someone holding a captured kiosk's certificate and key
tries against the fleet, on the real TLS broker made from the generated config with the real
controller, and that every attempt is refused. Each attack has its own focused regression test
elsewhere in tests/security; this runs them together, as one attacker would, against one fleet."""

from __future__ import annotations

import json

import pytest

from contract import topics
from controller import enrolment_service
from foundation.errors import EnrolmentRefused
from provisioning import pki
from tests.security.conftest import publish
from tests.support.waiting import wait_until


def _sentinel(client, kiosk_id: str, ctl, n: int) -> None:
    """A well-formed event of the attacker's own, stored: everything sent before it was handled."""
    publish(client, topics.topic(kiosk_id, "events"), {"v": 1, "id": f"sentinel-{n}", "seq": n, "type": "note"})
    assert wait_until(lambda: any(e["id"] == f"sentinel-{n}" for e in ctl.events(kiosk_id=kiosk_id)["items"]), 10)


def test_a_captured_kiosk_cannot_harm_the_fleet(identities, kiosk_client, make_tls_controller, enrol_ctx):
    ctl = make_tls_controller()
    victim_identity = identities("kiosk-b", "site-2")
    b = kiosk_client(victim_identity, "kiosk-b", connect=False)
    b.c.will_set(topics.topic("kiosk-b", "status"), topics.encode({"state": "offline", "reason": "lwt"}), 1, True)
    assert b.connect()
    for t in ("kiosk/v1/kiosk-b/cmd/+", "kiosk/v1/kiosk-b/svc/response", "kiosk/v1/kiosk-b/config/desired",
              topics.CONTROLLER_STATUS):
        assert not b.subscribe(t).is_failure
    publish(b, topics.topic("kiosk-b", "status"), {"v": 1, "state": "online", "mode": "normal"}, retain=True)
    assert wait_until(lambda: (ctl.kiosk("kiosk-b") or {}).get("state") == "online", 10)
    victim_cmd = ctl.send_command("kiosk-b", "collect_diagnostics", {}, "erin")
    assert wait_until(lambda: any(t.endswith("/cmd/collect_diagnostics") for t, _ in b.messages), 10)

    attacker_identity = identities("kiosk-a", "site-1")
    a = spy = kiosk_client(attacker_identity, "kiosk-a")
    for t in ("kiosk/v1/#", "kiosk/v1/+/cmd/#", "kiosk/v1/kiosk-b/#", "kiosk/v1/kiosk-a/#"):
        a.subscribe(t)  # granted or not, the read ACL filters what is delivered

    # Speak for the victim: on its topics (the ACL drops them) and in own payloads (the codec refuses).
    publish(a, topics.topic("kiosk-b", "status"), {"v": 1, "state": "offline", "reason": "shutdown"}, retain=True)
    publish(a, topics.topic("kiosk-b", "events"), {"v": 1, "id": "forged", "seq": 9, "type": "door_open"})
    publish(a, topics.topic("kiosk-b", "cmd/collect_diagnostics/result"), {"v": 1, "id": victim_cmd, "status": "ok"})
    publish(a, topics.topic("kiosk-a", "events"), {"v": 1, "kiosk_id": "kiosk-b", "id": "claim", "seq": 1, "type": "x"})
    # Finish the victim's command from its own topics, and feed itself orders and config.
    publish(a, topics.topic("kiosk-a", "cmd/collect_diagnostics/result"), {"v": 1, "id": victim_cmd, "status": "error"})
    publish(a, topics.cmd_topic("kiosk-a", "reboot"), {"v": 1, "id": "self"})
    publish(a, topics.topic("kiosk-a", "config/desired"), {"v": 1, "version": 99, "config": {}}, retain=True)
    publish(a, topics.CONTROLLER_STATUS, {"v": 1, "state": "offline", "reason": "shutdown"}, retain=True)
    # Redirect the controller's replies, and claim the victim's site.
    for target in (topics.CONTROLLER_STATUS, topics.topic("kiosk-b", "svc/response"),
                   topics.topic("kiosk-b", "config/desired")):
        publish(a, topics.topic("kiosk-a", "svc/request"), {"v": 1, "service": "no-such", "op": "x"},
                response_topic=target, correlation=b"x")
    publish(a, topics.topic("kiosk-a", "status"), {"v": 1, "state": "online", "site": "site-2"})
    # The spying subscriptions saw all of that once the three answers (sent after it) are in; the
    # takeover below ends their connection.
    own_response = topics.topic("kiosk-a", "svc/response")
    assert wait_until(lambda: [t for t, _ in spy.messages].count(own_response) >= 3, 10), (spy.subacks, spy.messages)
    seen_by_spy = list(spy.messages)
    # Take over the victim's and the controller's sessions.
    for stolen in ("kiosk-b", "kiosk-kiosk-b", "_controller", "kiosk-controller"):
        kiosk_client(attacker_identity, stolen).close()
    a = kiosk_client(attacker_identity, "kiosk-a")
    _sentinel(a, "kiosk-a", ctl, 1)

    # Enrolment: renew its own certificate into the victim's name.
    key = pki.new_ec_key()
    csr = pki.build_csr(key, "kiosk-b").public_bytes(pki.serialization.Encoding.PEM).decode()
    with pytest.raises(EnrolmentRefused) as exc:
        enrolment_service.renew(enrol_ctx, {"certificate": attacker_identity[0].read_text(), "csr": csr,
                                            "ts": enrol_ctx.clock(), "signature": "AAAA"})
    assert exc.value.reason in ("renew_signature", "csr_subject")

    # Nothing of it landed.
    victim = ctl.kiosk("kiosk-b")
    assert victim["state"] == "online" and victim["reason"] == ""
    assert ctl.events(kiosk_id="kiosk-b")["total"] == 0
    assert ctl.command(victim_cmd)["status"] == "sent"
    assert ctl.kiosk("kiosk-a")["site"] == "site-1"
    assert ctl.counts["rejected:impersonation"] == 1 and ctl.counts["svc_response_topic_refused"] == 3
    assert len(b.connack) == 1 and b.c.is_connected()  # never kicked off, its will never fired
    assert [json.loads(p)["state"] for t, p in b.messages if t == topics.CONTROLLER_STATUS] == ["online"]
    assert not [t for t, _ in b.messages if t.endswith(("/svc/response", "/config/desired"))]
    assert all(t.startswith("kiosk/v1/kiosk-a/") or t == topics.CONTROLLER_STATUS for t, _ in seen_by_spy)
    assert not [t for t, _ in seen_by_spy if "/cmd/" in t and not t.endswith("/result")]
    assert not [t for t, _ in seen_by_spy if t.endswith("/config/desired")]
    assert [json.loads(p)["state"] for t, p in seen_by_spy if t == topics.CONTROLLER_STATUS] == ["online"]
    assert not [t for t, _ in a.messages if t != own_response]
    # The victim still works: it answers its command and the controller takes it.
    publish(b, topics.topic("kiosk-b", "cmd/collect_diagnostics/result"), {"v": 1, "id": victim_cmd, "status": "ok"})
    assert ctl.wait_command(victim_cmd, 10)["status"] == "succeeded"
