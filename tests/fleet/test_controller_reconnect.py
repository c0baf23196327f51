"""The controller comes back right after a broker restart (issue 16): its own jittered reconnect."""

from __future__ import annotations

from controller.server import Controller
from foundation.backoff import CONTROLLER_RECONNECT_CAP
from foundation.settings import ControllerConfig, from_mapping
from tests.fleet.conftest import wait_until


def _count_failures(ctl: Controller) -> list[int]:
    """One entry per refused reconnect attempt of ``ctl`` (its paced callback still runs)."""
    failures: list[int] = []
    paced = ctl.client.on_connect_fail

    def counted(client, userdata) -> None:
        failures.append(1)
        paced(client, userdata)

    ctl.client.on_connect_fail = counted
    return failures


def test_controller_retries_within_its_cap_and_is_online_again_after_the_broker_restarts(broker, make_controller,
                                                                                          raw):
    ctl = make_controller()
    wait_until(ctl.client.is_connected, 10, "controller connected")
    failures = _count_failures(ctl)
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


def test_every_instance_of_several_is_connected_again_after_the_broker_restarts(broker, postgres_url, tmp_path):
    made: list[Controller] = []
    try:
        for name in ("a", "b"):
            config = from_mapping(ControllerConfig, {"broker": broker.url, "data_dir": str(tmp_path / name),
                                                     "keepalive": 5, "database": postgres_url, "instance": name})
            ctl = Controller(config)
            ctl.start()
            made.append(ctl)
        wait_until(lambda: all(c.client.is_connected() for c in made), 10, "both instances connected")
        failures = [_count_failures(c) for c in made]
        broker.stop()
        wait_until(lambda: not any(c.client.is_connected() for c in made), 10, "both see the broker gone")
        # As for one controller: five attempts within 20 s only at the controller's pace, not paho's.
        wait_until(lambda: all(len(f) >= 5 for f in failures), 20, "five attempts by each instance")
        broker.start()
        wait_until(lambda: all(c.client.is_connected() for c in made), 3 * CONTROLLER_RECONNECT_CAP + 10,
                   "both instances connected again")
        wait_until(lambda: all(c.listening.is_set() for c in made), 10, "both subscribed again")
    finally:
        for c in made:
            c.stop()
