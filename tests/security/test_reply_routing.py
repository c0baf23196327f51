"""Replies go only where identity says (issue 14, item 2): the controller answers a kiosk's
``svc/request`` on that kiosk's own ``svc/response``, whatever response topic the request names."""

from __future__ import annotations

import json

from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties

from contract import topics
from tests.security.conftest import publish
from tests.support.waiting import wait_until

REQUEST = {"v": 1, "service": "no-such-service", "op": "x"}


def test_response_topic_of_a_request_cannot_redirect_the_reply(identities, kiosk_client, make_tls_controller):
    ctl = make_tls_controller()
    a = kiosk_client(identities("kiosk-a"), "kiosk-kiosk-a")
    b = kiosk_client(identities("kiosk-b"), "kiosk-kiosk-b")
    assert not a.subscribe(topics.topic("kiosk-a", "svc/response")).is_failure
    for t in (topics.topic("kiosk-b", "svc/response"), topics.topic("kiosk-b", "config/desired"),
              topics.CONTROLLER_STATUS):
        assert not b.subscribe(t).is_failure
    for n, target in enumerate((topics.CONTROLLER_STATUS, topics.topic("kiosk-b", "svc/response"),
                                topics.topic("kiosk-b", "config/desired"))):
        publish(a, topics.topic("kiosk-a", "svc/request"), REQUEST, response_topic=target,
                correlation=f"a-{n}".encode())
    # B's own request is answered after A's three (one service thread, in order): once B has its
    # answer, anything of A's that went astray would have arrived too.
    publish(b, topics.topic("kiosk-b", "svc/request"), REQUEST, response_topic=topics.topic("kiosk-b", "svc/response"),
            correlation=b"b-0")
    assert wait_until(lambda: len([t for t, _ in a.messages if t.endswith("/svc/response")]) == 3, 10)
    assert wait_until(lambda: any(t.endswith("/svc/response") for t, _ in b.messages), 10)
    assert [t for t, _ in a.messages] == [topics.topic("kiosk-a", "svc/response")] * 3
    assert [t for t, _ in b.messages if t.endswith("/svc/response")] == [topics.topic("kiosk-b", "svc/response")]
    assert not [t for t, _ in b.messages if t.endswith("config/desired")]
    statuses = [json.loads(p)["state"] for t, p in b.messages if t == topics.CONTROLLER_STATUS]
    assert statuses == ["online"]
    assert ctl.counts["svc_response_topic_refused"] == 3


def test_the_standalone_service_host_answers_only_on_the_kiosks_own_response_topic(broker, tmp_path):
    """``python -m controller.service_backend`` (the backend on its own) follows the same rule."""
    from controller.service_backend.mqtt_host import ServiceHost
    from foundation.settings import parse_broker_url
    from tests.fleet.conftest import Raw

    host = ServiceHost(parse_broker_url(broker.url), tmp_path / "svc")
    host.start()
    assert host.wait_listening(10)
    watcher = Raw(broker, "watcher")
    try:
        watcher.subscribe("kiosk/v1/#")
        props = Properties(PacketTypes.PUBLISH)
        props.ResponseTopic = topics.CONTROLLER_STATUS
        props.CorrelationData = b"x-1"
        info = watcher.client.publish(topics.topic("K-A", "svc/request"), json.dumps(REQUEST), 1, properties=props)
        info.wait_for_publish(5)
        answer = watcher.wait_json(lambda t, b: t.endswith("/svc/response"))
        assert answer["ok"] is False
        assert not [t for t, _ in watcher.messages if t == topics.CONTROLLER_STATUS]
        assert [t for t, _ in watcher.messages if "svc/response" in t] == [topics.topic("K-A", "svc/response")]
    finally:
        watcher.close()
        host.stop()
