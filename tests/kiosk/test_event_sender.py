"""The journal's sending side (kiosk_ui.agent.event_sender), which the agent and the fail-over
benchmark's light kiosks both drive: a real SQLite journal, a recording publisher in place of the
MQTT client, a clock passed in."""

from __future__ import annotations

import json
from pathlib import Path

import paho.mqtt.client as mqtt
import pytest

from contract import payloads, topics
from kiosk_ui.agent.event_sender import INFLIGHT, EventSender, journal_event
from kiosk_ui.agent.journal import Journal

ONLINE = payloads.controller_online(1.0, "a")
OFFLINE = payloads.controller_offline("lwt")


class Recorder:
    """Stands in for paho's publish: records (topic, event id) and answers like paho does."""

    def __init__(self) -> None:
        self.sent: list[tuple[str, str]] = []
        self.rc = mqtt.MQTT_ERR_SUCCESS

    def __call__(self, topic: str, payload: bytes) -> mqtt.MQTTMessageInfo:
        info = mqtt.MQTTMessageInfo(len(self.sent) + 1)
        info.rc = self.rc
        if self.rc == mqtt.MQTT_ERR_SUCCESS:
            self.sent.append((topic, json.loads(payload)["id"]))
        return info

    def ids(self) -> list[str]:
        return [i for _t, i in self.sent]


@pytest.fixture
def made(tmp_path: Path):
    journal = Journal(tmp_path / "journal.sqlite3")
    clock = [100.0]
    publish = Recorder()
    sender = EventSender(journal, publish, ack_wait=10.0, monotonic=lambda: clock[0])
    yield journal, sender, publish, clock
    journal.close()


def _events(journal: Journal, n: int, first: int = 0) -> list[str]:
    ids = [f"e{i:04d}" for i in range(first, first + n)]
    for seq, event_id in enumerate(ids, start=first + 1):
        journal_event(journal, "K-SEND-1", event_id=event_id, boot_id="b", seq=seq, ts=1.0, type="load", fields={})
    return ids


def test_events_go_out_on_the_events_topic_and_stay_until_the_controller_commits_them(made) -> None:
    journal, sender, publish, _clock = made
    ids = _events(journal, 3)
    sender.pump(gen=1, connected=True, presence=True)
    assert publish.sent == [(topics.topic("K-SEND-1", "events"), i) for i in ids]
    for mid in (1, 2, 3):
        sender.puback(mid)  # the broker has them: not enough, the controller has not committed
    sender.pump(gen=1, connected=True, presence=True)
    assert journal.depth() == 3 and len(publish.sent) == 3
    sender.committed(tuple(ids[:2]))
    sender.pump(gen=1, connected=True, presence=True)
    assert journal.depth() == 1 and list(sender.unacked) == [ids[2]]


def test_at_most_inflight_unacknowledged_and_nothing_while_disconnected(made) -> None:
    journal, sender, publish, _clock = made
    ids = _events(journal, INFLIGHT + 5)
    sender.pump(gen=1, connected=False, presence=None)
    assert publish.sent == []
    sender.pump(gen=1, connected=True, presence=None)
    assert publish.ids() == ids[:INFLIGHT]
    sender.committed(tuple(ids[:3]))
    sender.pump(gen=1, connected=True, presence=True)
    assert publish.ids() == ids[:INFLIGHT + 3]


def test_unanswered_events_are_sent_again_after_the_wait_which_doubles(made) -> None:
    journal, sender, publish, clock = made
    ids = _events(journal, 2)
    sender.pump(gen=1, connected=True, presence=True)
    clock[0] += 9.9
    sender.pump(gen=1, connected=True, presence=True)
    assert sender.resends == 0
    clock[0] += 0.2
    sender.pump(gen=1, connected=True, presence=True)
    assert (sender.resends, sender.timed_resends, sender.resent_events, publish.ids()) == (1, 1, 2, ids + ids)
    clock[0] += 15  # the wait is 20 s now
    sender.pump(gen=1, connected=True, presence=True)
    assert sender.resends == 1
    clock[0] += 200  # but not while the controller says it is offline: nobody would answer
    sender.pump(gen=1, connected=True, presence=False)
    assert sender.resends == 1
    sender.committed((ids[0],))  # an acknowledgement brings the wait back to 10 s
    sender.pump(gen=1, connected=True, presence=False)
    assert sender.resend_after == 10.0


def test_a_controller_back_from_offline_gets_the_unacknowledged_again_at_once(made) -> None:
    journal, sender, publish, _clock = made
    ids = _events(journal, 2)
    sender.pump(gen=1, connected=True, presence=True)
    sender.presence(True, False, OFFLINE)
    sender.presence(False, True, ONLINE)  # another instance answers for the fleet (no queued flag)
    sender.pump(gen=1, connected=True, presence=True)
    assert (sender.resends, sender.timed_resends, publish.ids()) == (1, 0, ids + ids)
    assert sender.resend_after == 10.0  # a return is not an unanswered wait: no doubling


def test_a_controller_whose_broker_queued_the_events_restarts_the_wait_instead(made) -> None:
    journal, sender, publish, clock = made
    _events(journal, 1)
    sender.pump(gen=1, connected=True, presence=True)
    clock[0] += 8
    sender.presence(False, True, payloads.controller_online(1.0, queued_while_away=True))
    sender.pump(gen=1, connected=True, presence=True)
    clock[0] += 8  # 16 s after sending, 8 s after the return: not due
    sender.pump(gen=1, connected=True, presence=True)
    assert sender.resends == 0 and len(publish.sent) == 1


def test_a_new_connection_starts_again_from_the_oldest_without_counting_a_resend(made) -> None:
    journal, sender, publish, _clock = made
    ids = _events(journal, 2)
    sender.pump(gen=1, connected=True, presence=True)
    sender.pump(gen=2, connected=True, presence=None)
    assert publish.ids() == ids + ids and sender.resends == 0


def test_a_return_with_nothing_unacknowledged_is_not_counted_as_a_resend(made) -> None:
    _journal, sender, _publish, _clock = made
    sender.presence(True, False, OFFLINE)
    sender.presence(False, True, ONLINE)
    sender.pump(gen=1, connected=True, presence=True)
    assert sender.resends == 0 and not sender.resend_now


def test_a_controller_that_does_not_acknowledge_lets_go_on_the_brokers_puback(made) -> None:
    journal, sender, publish, _clock = made
    sender.presence(None, True, {"state": "online", "ts": 1.0})  # an older controller: no acks_events
    assert not sender.controller_acks
    _events(journal, 2)
    sender.pump(gen=1, connected=True, presence=True)
    sender.puback(1)
    sender.pump(gen=1, connected=True, presence=True)
    assert journal.depth() == 1 and len(publish.sent) == 2


def test_a_refused_publish_stops_the_round_and_is_tried_again(made) -> None:
    journal, sender, publish, _clock = made
    ids = _events(journal, 2)
    publish.rc = mqtt.MQTT_ERR_NO_CONN
    sender.pump(gen=1, connected=True, presence=True)
    assert not sender.unacked
    publish.rc = mqtt.MQTT_ERR_SUCCESS
    sender.pump(gen=1, connected=True, presence=True)
    assert publish.ids() == ids
