"""The controller's reconnect schedule (foundation.backoff) and how it is handed to paho's loop."""

from __future__ import annotations

from types import SimpleNamespace

import pytest

from contract.mqtt_client import pace_reconnects
from foundation.backoff import CONTROLLER_RECONNECT_CAP, controller_reconnect


def test_schedule_doubles_from_half_a_second_to_the_cap() -> None:
    top = controller_reconnect(rand=lambda: 1.0)
    assert [top.next_delay() for _ in range(6)] == [0.5, 1.0, 2.0, 4.0, 4.0, 4.0]
    assert CONTROLLER_RECONNECT_CAP == 4.0


def test_full_jitter_never_below_a_tenth_of_the_ceiling() -> None:
    low = controller_reconnect(rand=lambda: 0.0)
    assert [low.next_delay() for _ in range(5)] == pytest.approx([0.05, 0.1, 0.2, 0.4, 0.4])
    draws = iter([0.5, 0.25])
    mid = controller_reconnect(rand=lambda: next(draws))
    assert [mid.next_delay(), mid.next_delay()] == pytest.approx([0.5 * 0.55, 1.0 * 0.325])


class RecordingClient:
    """Stands in for paho's client: its callback attributes and the one setter the pacing uses."""

    def __init__(self) -> None:
        self.on_connect = self.on_disconnect = self.on_connect_fail = None
        self.delays: list[float] = []

    def reconnect_delay_set(self, min_delay: float, max_delay: float) -> None:
        assert min_delay == max_delay  # one fixed wait: paho's own doubling never applies
        self.delays.append(min_delay)


def test_each_failure_sets_the_next_jittered_wait_and_a_connection_starts_again() -> None:
    client = RecordingClient()
    seen: list[str] = []
    client.on_connect = lambda *a: seen.append("connect")
    client.on_disconnect = lambda *a: seen.append("disconnect")
    pace_reconnects(client, controller_reconnect(rand=lambda: 1.0))  # type: ignore[arg-type]
    assert client.delays == [0.5]  # armed before the first loss
    ok, refused = SimpleNamespace(is_failure=False), SimpleNamespace(is_failure=True)
    client.on_connect(client, None, None, ok, None)
    client.on_disconnect(client, None, None, None, None)  # the broker went away
    for _ in range(4):
        client.on_connect_fail(client, None)  # still down
    assert client.delays == [0.5, 0.5, 1.0, 2.0, 4.0, 4.0]
    client.on_connect(client, None, None, refused, None)  # a refusal does not start again
    client.on_disconnect(client, None, None, None, None)
    assert client.delays[-1] == 4.0
    client.on_connect(client, None, None, ok, None)  # back: the next loss starts at 0.5 s again
    client.on_disconnect(client, None, None, None, None)
    assert client.delays[-1] == 0.5
    assert seen == ["connect", "disconnect", "connect", "disconnect", "connect", "disconnect"]
