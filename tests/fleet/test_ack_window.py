"""Event acknowledgements are gathered per kiosk over ACK_WINDOW, never sent before the commit."""

from __future__ import annotations

from contract import payloads, topics
from controller.event_acks import ACK_WINDOW
from controller.server import Controller
from foundation.settings import ControllerConfig, from_mapping


class _Published:
    """Records what the controller publishes (unit test: no broker needed for this decision)."""

    def __init__(self) -> None:
        self.sent: list[tuple[str, tuple[str, ...]]] = []

    def publish(self, topic, payload, qos=0, retain=False, properties=None):
        self.sent.append((topic, payloads.parse_events_ack(topics.decode(payload))))


def _controller(tmp_path) -> tuple[Controller, _Published]:
    c = Controller(from_mapping(ControllerConfig, {"broker": "mqtt://127.0.0.1:1", "data_dir": str(tmp_path)}))
    rec = _Published()
    c.client = rec  # type: ignore[assignment]
    return c, rec


def test_ids_of_several_commits_go_out_together_once_the_window_passed(tmp_path):
    c, rec = _controller(tmp_path)
    try:
        c._to_ack = {"K1": ["a"], "K2": ["x"]}
        c._ack_events(0.0)
        assert rec.sent == []  # nothing committed yet: nothing acknowledged
        c._committed_events(10.0)
        c._to_ack = {"K1": ["b"]}
        c._committed_events(10.4)
        c._ack_events(10.0 + ACK_WINDOW / 2)
        assert rec.sent == []
        c._ack_events(10.0 + ACK_WINDOW)
        assert sorted(rec.sent) == [(topics.topic("K1", "events/ack"), ("a", "b")),
                                    (topics.topic("K2", "events/ack"), ("x",))]
        c._ack_events(20.0)
        assert len(rec.sent) == 2  # each id once
    finally:
        c.store.close()


def test_a_full_acknowledgement_goes_at_once_and_a_clean_stop_flushes_the_rest(tmp_path):
    c, rec = _controller(tmp_path)
    try:
        c._to_ack = {"K1": [f"e{i}" for i in range(payloads.MAX_ACK_IDS + 3)]}
        c._committed_events(0.0)
        c._ack_events(0.0)
        assert [len(ids) for _, ids in rec.sent] == [payloads.MAX_ACK_IDS]
        c._ack_events(0.0, flush=True)
        assert [len(ids) for _, ids in rec.sent] == [payloads.MAX_ACK_IDS, 3]
    finally:
        c.store.close()
