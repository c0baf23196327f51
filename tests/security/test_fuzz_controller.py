"""Property-based fuzzing of a live controller (issue 14, item 9): a captured kiosk's certificate
sends generated payloads (lone surrogates, NaN/Infinity, huge and deep values, wrong types) on
every topic the contract lets a kiosk write (well-formed bodies with one field fuzzed, and
anything at all), with MQTT v5 properties (response topic, correlation
data, user properties); afterwards the controller still stores, answers commands and serves the
console. Bounded: a few hundred examples against one controller."""

from __future__ import annotations

import json
import warnings

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties

from contract import topics
from controller.web.app import build_console, create_app
from tests.security.conftest import publish
from tests.support.waiting import wait_until

warnings.filterwarnings("ignore", message=".*httpx.*")
from starlette.testclient import TestClient  # noqa: E402

KIOSK = "kiosk-a"
EXAMPLES = 300
NAMES = st.text(alphabet="abcdefghijklmnopqrstuvwxyz_0123456789", min_size=1, max_size=12)
# Well-formed bodies per kind: one field of such a body fuzzed reaches the handlers and the store.
BASES = {
    "status": {"v": 1, "state": "online", "mode": "normal", "boot_id": "b1"},
    "telemetry": {"v": 1, "uptime": 5.0, "cpu": 3.0},
    "events": {"v": 1, "id": "e", "seq": 1, "ts": 1.0, "type": "note"},
    "devices/{n}": {"v": 1, "state": "idle", "detail": "paper_ok"},
    "config/reported": {"v": 1, "version": 1, "status": "applied", "config": {}},
    "cmd/{n}/result": {"v": 1, "id": "c", "status": "ok", "data": {}},
    "svc/request": {"v": 1, "service": "feedback", "op": "submit", "args": {}},
}
NASTY_TEXT = st.sampled_from(["x\ud800", "\udfff", "\ud83d", "a\x00b", "=CMD()", "'; DROP TABLE kiosks;--",
                              "../../etc/passwd", "<script>alert(1)</script>", "𠜎" * 300, "x" * 70_000])
TEXT = st.one_of(st.text(max_size=40), NASTY_TEXT)
SCALARS = st.one_of(st.none(), st.booleans(), st.integers(), st.integers(min_value=2**63, max_value=2**80),
                    st.floats(allow_nan=True, allow_infinity=True), TEXT)
VALUES = st.recursive(SCALARS, lambda inner: st.one_of(st.lists(inner, max_size=4),
                                                       st.dictionaries(TEXT, inner, max_size=4)), max_leaves=12)
CONTRACT_KEYS = ("state", "mode", "site", "boot_id", "reason", "versions", "devices", "id", "seq", "ts", "type",
                 "uptime", "cpu", "memory", "temperature", "queue_depth", "version", "status", "config", "data",
                 "error", "service", "op", "args", "kiosk_id", "detail", "required_action")
CONTRACT_VALUES = st.one_of(VALUES, st.sampled_from(["online", "offline", "normal", "ok", "error", "queue_ticket",
                                                     "take", "feedback", KIOSK, "kiosk-b", 1, 0, -1]))
BODIES = st.fixed_dictionaries({"v": st.one_of(st.just(1), VALUES)},
                               optional={k: CONTRACT_VALUES for k in CONTRACT_KEYS})


def _deep(n: int) -> bytes:
    return b'{"v":1,"args":' + b"[" * n + b"]" * n + b"}"


PAYLOADS = st.one_of(
    BODIES.map(lambda b: json.dumps(b, ensure_ascii=True, allow_nan=True).encode()),
    BODIES.map(lambda b: json.dumps(b, ensure_ascii=False, allow_nan=True).encode("utf-8", "surrogatepass")),
    st.binary(max_size=64),
    st.integers(min_value=33, max_value=200_000).map(_deep),
    st.integers(min_value=256 * 1024 - 16, max_value=300 * 1024).map(lambda n: b'{"v":1,"x":"' + b"y" * n + b'"}'),
)
# MQTT strings (topics, user properties) with control characters or non-characters are protocol
# errors the broker answers by disconnecting; the controller never sees them.
MQTT_CHARS = dict(codec="utf-8", exclude_categories=("Cc", "Cs", "Co", "Cn"))
PROPERTY_TEXT = st.text(st.characters(**MQTT_CHARS), max_size=40)
RESPONSE_TOPICS = st.one_of(st.none(), st.sampled_from([
    topics.CONTROLLER_STATUS, topics.topic("kiosk-b", "svc/response"), topics.topic("kiosk-b", "config/desired"),
    topics.topic(KIOSK, "svc/response"), "$SYS/broker", "kiosk/v1/kiosk-b/cmd/reboot"]),
    # A wildcard in a response topic is such a protocol error too.
    st.text(st.characters(**MQTT_CHARS, exclude_characters="+#"), max_size=40))


@st.composite
def messages(draw):
    kind = draw(st.sampled_from(sorted(BASES)))
    topic = topics.topic(KIOSK, kind.format(n=draw(NAMES)))
    near = st.tuples(st.sampled_from(CONTRACT_KEYS), CONTRACT_VALUES).map(
        lambda kv: json.dumps({**BASES[kind], kv[0]: kv[1]}, ensure_ascii=True, allow_nan=True).encode())
    payload = draw(st.one_of(near, PAYLOADS))
    props = Properties(PacketTypes.PUBLISH)
    response = draw(RESPONSE_TOPICS)
    if response:
        props.ResponseTopic = response
    if draw(st.booleans()):
        props.CorrelationData = draw(st.binary(max_size=64))
    for key, value in draw(st.lists(st.tuples(PROPERTY_TEXT, PROPERTY_TEXT), max_size=3)):
        props.UserProperty = (key, value)
    return topic, payload, props, draw(st.booleans())


@pytest.mark.timeout(120)
def test_generated_messages_never_stop_the_controller(identities, kiosk_client, make_tls_controller, fleet_dir):
    ctl = make_tls_controller()
    a = kiosk_client(identities(KIOSK, "site-1"), KIOSK)
    assert not a.subscribe(topics.topic(KIOSK, "cmd/+")).is_failure
    sent = []
    last: list = []

    @settings(max_examples=EXAMPLES, deadline=None, database=None, derandomize=True,
              suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large, HealthCheck.large_base_example])
    @given(messages())
    def send(message):
        topic, payload, props, retain = message
        if not a.c.is_connected():
            raise AssertionError(f"the broker disconnected the fuzzer after {last[-1] if last else None!r}")
        last.append((topic, payload[:80], len(payload), str(props), retain))
        a.c.publish(topic, payload, qos=1, retain=retain, properties=props).wait_for_publish(10)
        sent.append(topic)

    send()
    assert len(sent) >= EXAMPLES // 2

    # 1. It still stores: a well-formed event after the storm (same connection, so in order).
    publish(a, topics.topic(KIOSK, "status"), {"v": 1, "state": "online", "mode": "normal"})
    publish(a, topics.topic(KIOSK, "events"), {"v": 1, "id": "after-the-storm", "seq": 1, "type": "note"})
    assert wait_until(lambda: any(e["id"] == "after-the-storm" for e in ctl.events(kiosk_id=KIOSK)["items"]), 20)
    assert ctl._worker.is_alive() and ctl._svc_thread.is_alive()
    assert ctl.counts.get("rejected:internal", 0) == 0, ctl.counts

    # 2. It still answers commands: one goes out, the kiosk's result comes back and is final.
    cid = ctl.send_command(KIOSK, "collect_diagnostics", {}, "erin")
    assert wait_until(lambda: any(t.endswith("/cmd/collect_diagnostics") for t, _ in a.messages), 10)
    publish(a, topics.topic(KIOSK, "cmd/collect_diagnostics/result"), {"v": 1, "id": cid, "status": "ok", "data": {}})
    assert ctl.wait_command(cid, 10)["status"] == "succeeded"

    # 3. It still serves the console, the kiosk's page and its APIs included.
    console = build_console(fleet_dir.root / "controller", ctl)
    console.accounts.add_user("ada", "admin", "ada-admin-password")
    with TestClient(create_app(console, start_poller=False)) as c:
        assert c.post("/login", data={"name": "ada", "password": "ada-admin-password"}).status_code == 200
        for path in ("/fleet", f"/kiosks/{KIOSK}", "/api/v1/kiosks", f"/api/v1/kiosks/{KIOSK}",
                     f"/api/v1/kiosks/{KIOSK}/telemetry", f"/api/v1/kiosks/{KIOSK}/events", "/metrics", "/alarms"):
            assert c.get(path).status_code == 200, path
        # ...and says what was refused, by reason.
        assert 'kiosk_controller_refusals_total{reason="rejected:too_deep"}' in c.get("/metrics").text
    console.accounts.close()
