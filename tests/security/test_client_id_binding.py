"""Client-id takeover (issue 14, item 3), against the broker made from the generated config:
the broker replaces every client id by the certificate's name, so a captured kiosk cannot
connect as another kiosk or as the controller, kick them off, fire their wills or wipe the
controller's persistent session."""

from __future__ import annotations

from contract import topics
from tests.security.conftest import publish
from tests.support.waiting import wait_until

STOLEN_IDS = ("kiosk-kiosk-b", "kiosk-b", "kiosk-controller", "_controller", "ctl-controller")


def test_a_kiosk_cannot_take_over_another_clients_session(identities, kiosk_client, make_tls_controller):
    ctl = make_tls_controller()
    connects: list[int] = []
    on_connect = ctl.client.on_connect
    ctl.client.on_connect = lambda *args: (connects.append(1), on_connect(*args))
    a_id, b_id = identities("kiosk-a"), identities("kiosk-b")
    b = kiosk_client(b_id, "kiosk-kiosk-b", connect=False)
    b.c.will_set(topics.topic("kiosk-b", "status"), topics.encode({"state": "offline", "reason": "lwt"}), 1, True)
    assert b.connect()
    publish(b, topics.topic("kiosk-b", "status"), topics.encode({"state": "online", "mode": "normal"}), retain=True)
    assert wait_until(lambda: (ctl.kiosk("kiosk-b") or {}).get("state") == "online", 10)
    for stolen in STOLEN_IDS:
        a = kiosk_client(a_id, stolen)  # accepted, but as "kiosk-a", whatever it asked for
        a.close()
    # B is still on its first connection: never kicked, so its will never fired.
    publish(b, topics.topic("kiosk-b", "events"), {"v": 1, "id": "after", "seq": 1, "type": "note"})
    assert wait_until(lambda: ctl.events(kiosk_id="kiosk-b")["total"] == 1, 10)
    assert len(b.connack) == 1 and b.c.is_connected()
    assert ctl.kiosk("kiosk-b")["state"] == "online"
    assert ctl.client.is_connected() and connects == []


def test_a_kiosk_cannot_wipe_the_controllers_persistent_session(identities, kiosk_client, make_tls_controller):
    ctl = make_tls_controller()
    ctl.stop()  # the broker keeps its session (subscriptions, queued QoS 1 messages)
    b = kiosk_client(identities("kiosk-b"), "kiosk-kiosk-b")
    publish(b, topics.topic("kiosk-b", "events"), {"v": 1, "id": "while-away", "seq": 1, "type": "note"})
    for stolen in ("_controller", "kiosk-controller"):
        a = kiosk_client(identities("kiosk-a") if stolen == "_controller" else identities("kiosk-c"), stolen)
        a.close()  # clean start under a stolen id would have dropped the controller's session
    again = make_tls_controller()
    assert wait_until(lambda: again.events(kiosk_id="kiosk-b")["total"] == 1, 10)
    assert again.events(kiosk_id="kiosk-b")["items"][0]["id"] == "while-away"


def test_a_kiosk_cannot_write_its_own_commands_or_desired_config(identities, kiosk_client, fleet_dir):
    ctl = kiosk_client((fleet_dir.controller_cert, fleet_dir.controller_key), "watcher")
    assert not ctl.subscribe("kiosk/v1/kiosk-a/#").is_failure
    a = kiosk_client(identities("kiosk-a"), "kiosk-kiosk-a")
    publish(a, topics.cmd_topic("kiosk-a", "reboot"), {"v": 1, "id": "self-made"})
    publish(a, topics.topic("kiosk-a", "config/desired"), {"v": 1, "version": 9, "config": {}}, retain=True)
    publish(a, topics.topic("kiosk-a", "events"), {"v": 1, "id": "sentinel", "seq": 1, "type": "note"})
    assert wait_until(lambda: any(t.endswith("/events") for t, _ in ctl.messages), 10)
    assert [t for t, _ in ctl.messages] == [topics.topic("kiosk-a", "events")]


def test_an_oversized_packet_costs_only_the_sender_its_connection(identities, kiosk_client, make_tls_controller):
    ctl = make_tls_controller()
    a = kiosk_client(identities("kiosk-a"), "kiosk-a")
    b = kiosk_client(identities("kiosk-b"), "kiosk-b")
    a.c.publish(topics.topic("kiosk-a", "events"), b"x" * (2 * 1024 * 1024), qos=1)
    assert wait_until(lambda: not a.c.is_connected(), 10)
    publish(b, topics.topic("kiosk-b", "events"), {"v": 1, "id": "still-here", "seq": 1, "type": "note"})
    assert wait_until(lambda: ctl.events(kiosk_id="kiosk-b")["total"] == 1, 10)
    assert ctl.client.is_connected() and b.c.is_connected()
