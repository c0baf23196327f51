"""The controller comes back right after a broker restart (issue 16): its own jittered reconnect."""

from __future__ import annotations

from foundation.backoff import CONTROLLER_RECONNECT_CAP
from tests.fleet.conftest import wait_until


def test_controller_retries_within_its_cap_and_is_online_again_after_the_broker_restarts(broker, make_controller,
                                                                                          raw):
    ctl = make_controller()
    wait_until(ctl.client.is_connected, 10, "controller connected")
    failures: list[int] = []
    paced = ctl.client.on_connect_fail

    def counted(client, userdata) -> None:
        failures.append(1)
        paced(client, userdata)

    ctl.client.on_connect_fail = counted
    broker.stop()
    wait_until(lambda: not ctl.client.is_connected(), 10, "controller sees the broker gone")
    # Five refused attempts take at most 0.5 + 1 + 2 + 4 + 4 s with the controller's policy; paho's
    # own (1 s doubling to 30 s) would need 31 s, past this wait.
    wait_until(lambda: len(failures) >= 5, 20, "five reconnect attempts while the broker is down")
    broker.start()
    wait_until(ctl.client.is_connected, 3 * CONTROLLER_RECONNECT_CAP + 10, "controller connected again")
    # Its retained presence says "online" again: what a kiosk reads to re-send its unacknowledged events.
    seen = raw("presence-watch")
    seen.subscribe("kiosk/v1/_controller/status")
    body = seen.wait_json(lambda topic, b: topic == "kiosk/v1/_controller/status" and b.get("state") == "online", 10)
    assert body["state"] == "online"
