"""Bad input to the controller is counted and logged, never crashes it or corrupts state."""

from __future__ import annotations

import json

from contract import topics
from tests.fleet.conftest import wait_until


def test_bad_input_is_counted_and_harmless(make_controller, make_kiosk, raw):
    ctl = make_controller()
    make_kiosk("K-GOOD", ctl.public_key())
    wait_until(lambda: (ctl.kiosk("K-GOOD") or {}).get("state") == "online", 10, "kiosk online")
    r = raw("junk")
    before = dict(ctl.counts)
    r.publish("kiosk/v1/K-GOOD/events", b"{not json")
    r.publish("kiosk/v1/K-GOOD/events", b"\xff\xfe\x00")
    r.publish("kiosk/v1/K-GOOD/events", b"[1, 2, 3]")
    r.publish("kiosk/v1/K-GOOD/events", json.dumps({"v": 1, "id": 5, "type": "x", "seq": 1}).encode())
    r.publish("kiosk/v1/K-GOOD/events", json.dumps({"v": 1, "id": "e1", "type": "x", "seq": "one"}).encode())
    r.publish("kiosk/v1/K-GOOD/status", json.dumps({"v": 1, "state": "dancing"}).encode())
    r.publish("kiosk/v1/K-GOOD/telemetry", json.dumps({"v": 1, "uptime": "long"}).encode(), qos=0)
    r.publish("kiosk/v1/K-GOOD/devices/printer", json.dumps({"v": 1, "state": ["error"]}).encode())
    r.publish("kiosk/v1/K-GOOD/cmd/reboot/result", json.dumps({"v": 1, "id": "x", "status": "great"}).encode())
    r.publish("kiosk/v1/K-GOOD/events", b'{"v": 1, "id": "big", "type": "x", "seq": 1, "pad": "'
              + b"x" * (1024 * 1024) + b'"}')
    r.publish("kiosk/v1/K-GOOD/events", json.dumps({"v": 2, "id": "e2", "type": "x", "seq": 1}).encode())
    r.publish("kiosk/v1/K-GOOD/status", json.dumps(
        {"v": 1, "state": "offline", "reason": "lwt", "kiosk_id": "K-OTHER"}).encode())
    r.publish("kiosk/v1/K-GOOD/events", json.dumps(
        {"v": 1, "id": "spoof", "type": "tamper", "seq": 1, "kiosk_id": "K-OTHER"}).encode())
    # Topics outside the contract: the controller's subscriptions do not even match them.
    r.publish("kiosk/v1/K-GOOD/svc/unknown", b"{}")
    r.publish("kiosk/v1/K-GOOD/devices/printer/extra", b"{}")
    expected = 13
    wait_until(lambda: ctl.counts["rejected"] - before.get("rejected", 0) >= expected, 10, "rejections counted")
    # Still alive and correct: a well-formed event from the kiosk is stored, its state untouched.
    k = ctl.kiosk("K-GOOD")
    assert k["state"] == "online"
    r.publish(topics.topic("K-GOOD", "events"), {"v": 1, "id": "fine-1", "kiosk_id": "K-GOOD", "type": "note",
                                                "seq": 1, "ts": 1.0})
    wait_until(lambda: ctl.events(type="note")["total"] == 1, 10, "good event stored")
    assert ctl.events(type="tamper")["total"] == 0 and ctl.kiosk("K-OTHER") is None
    assert not ctl.alarms(kiosk_id="K-GOOD")["items"]
    counts = ctl.stats()
    assert counts.get("rejected:too_large") == 1 and counts.get("rejected:impersonation") == 2
    assert counts.get("rejected:invalid_json", 0) == 2 and counts.get("rejected:bad_payload", 0) == 7
    # Another contract major is refused with its own reason and counted per version (mixed fleets).
    assert counts.get("rejected:unsupported_version") == 1 and counts.get("refused_version:2") == 1
    assert ctl._worker.is_alive()


def test_event_ids_are_deduplicated(make_controller, raw):
    ctl = make_controller()
    r = raw("dup")
    body = {"v": 1, "id": "same-id", "kiosk_id": "K-DUP", "type": "note", "seq": 1, "ts": 1.0}
    for _ in range(5):
        r.publish(topics.topic("K-DUP", "events"), body)
    wait_until(lambda: ctl.counts["events_duplicate"] >= 4, 10, "duplicates seen")
    assert ctl.events(kiosk_id="K-DUP")["total"] == 1


def test_service_request_is_answered_on_its_own_response_topic_only(make_controller, raw):
    from paho.mqtt.packettypes import PacketTypes
    from paho.mqtt.properties import Properties

    make_controller()
    r = raw("svc-kiosk")
    r.subscribe("kiosk/v1/K-SVC/svc/reply-here")
    r.subscribe("kiosk/v1/K-SVC/svc/response")
    props = Properties(PacketTypes.PUBLISH)
    # A response topic other than the kiosk's own svc/response is not followed (issue 14).
    props.ResponseTopic = "kiosk/v1/K-SVC/svc/reply-here"
    props.CorrelationData = b"req-42"
    got = []
    r.client.on_message = lambda c, u, m: got.append((m.topic, json.loads(m.payload), m.properties.CorrelationData))
    r.client.publish(topics.topic("K-SVC", "svc/request"),
                     topics.encode({"kiosk_id": "K-SVC", "service": "no-such-service", "op": "x"}), 1,
                     properties=props).wait_for_publish(5)
    wait_until(lambda: got, 10, "service response")
    topic, body, corr = got[0]
    assert len(got) == 1 and topic == "kiosk/v1/K-SVC/svc/response" and corr == b"req-42"
    assert body["ok"] is False and body["error"] in ("unknown_op", "service_unavailable")
