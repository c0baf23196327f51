"""Nothing lost: a kiosk keeps each event until the controller acknowledges it after its commit.

Real Mosquitto, real kiosk agents, the real controller (in-process, or as a process that is
SIGKILLed). The broker's queue for the controller is kept tiny on purpose: what survives a
controller's downtime is decided by the kiosks' journals, not by the broker.
"""

from __future__ import annotations

import json
import sqlite3

import pytest

from contract import payloads, topics
from foundation.errors import RemoteProtocolError
from kiosk_ui.agent.journal import Journal
from tests.fleet.conftest import wait_until

# What the controller before acknowledgements (branch ``wiring``, contract 1.1) kept retained on
# kiosk/v1/_controller/status, byte for byte: ``payloads.controller_online`` had no ``acks_events``.
PREVIOUS_CONTROLLER_ONLINE = b'{"v":1,"state":"online","ts":1764800000.0}'


def test_ack_builder_and_parser_refuse_what_they_cannot_carry():
    ids = [f"e{i}" for i in range(3)]
    assert payloads.parse_events_ack(topics.decode(topics.encode_to_kiosk(payloads.events_ack(ids)))) == tuple(ids)
    with pytest.raises(ValueError, match="at most 500"):
        payloads.events_ack(["x"] * 501)
    for bad in ({"ids": "e1"}, {"ids": [1]}, {"ids": [""]}, {"ids": ["x" * 129]}, {}, {"ids": ["x"] * 501}):
        with pytest.raises(RemoteProtocolError):
            payloads.parse_events_ack(bad)


def test_a_journal_from_before_acknowledgements_gets_its_event_ids(tmp_path):
    path = tmp_path / "j.sqlite3"
    old = sqlite3.connect(path)
    old.executescript("CREATE TABLE outbox (seq INTEGER PRIMARY KEY AUTOINCREMENT, topic TEXT NOT NULL,"
                      " payload BLOB NOT NULL);")
    old.execute("INSERT INTO outbox (topic, payload) VALUES (?, ?)", ("t", b'{"v":1,"id":"old-1"}'))
    old.commit()
    old.close()
    j = Journal(path)
    j.append("t", b'{"v":1,"id":"new-1"}', "new-1")
    assert [e for _, _, _, e in j.pending(0)] == ["old-1", "new-1"]
    assert j.remove_events(["old-1", "unknown"]) == 1 and j.depth() == 1
    j.close()


def test_event_leaves_the_journal_only_on_the_controllers_ack(make_agent, make_controller, raw):
    watcher = raw("watch")
    watcher.subscribe("kiosk/v1/+/events")
    watcher.subscribe("kiosk/v1/+/events/ack")
    agent = make_agent("K-ACK-1", ack_wait=1.0)
    ids = {agent.emit("load", {"n": n}) for n in range(5)}
    # The broker has them (and PUBACKed them): with no controller, the kiosk still holds them.
    wait_until(lambda: ids <= {json.loads(p)["id"] for t, p in watcher.messages if t.endswith("/events")}, 10,
               "events on the broker")
    wait_until(lambda: not agent.sender.inflight, 10, "PUBACKs handled")
    assert agent.journal.depth() >= 5
    ctl = make_controller()
    wait_until(lambda: agent.journal.depth() == 0, 20, "journal drained by the controller's acks")
    # The watcher's copy of the acknowledgements comes over its own connection, maybe after the kiosk's.
    acked = lambda: {i for t, p in list(watcher.messages)  # noqa: E731
                     if t == "kiosk/v1/K-ACK-1/events/ack" for i in json.loads(p)["ids"]}
    wait_until(lambda: ids <= acked(), 10, "the acknowledgements seen by the watcher")
    assert {e["id"] for e in ctl.events(kiosk_id="K-ACK-1", type="load")["items"]} == ids


def test_kiosk_facing_a_controller_that_never_acks_lets_go_on_puback(make_agent, raw):
    raw("previous-controller").publish(topics.CONTROLLER_STATUS, PREVIOUS_CONTROLLER_ONLINE, retain=True)
    agent = make_agent("K-ACK-OLD", ack_wait=1.0)
    wait_until(lambda: agent.controller_online and not agent.controller_acks, 10, "old controller seen")
    for n in range(5):
        agent.emit("load", {"n": n})
    wait_until(lambda: agent.journal.depth() == 0, 10, "journal drained on PUBACK")



def test_unanswered_resends_wait_longer_each_time(make_agent):
    clock = [1000.0]
    agent = make_agent("K-ACK-WAIT", ack_wait=1.0, monotonic=lambda: clock[0])
    agent.emit("load", {"n": 0})
    wait_until(lambda: len(agent.sender.unacked) == 2, 10, "boot and load event sent")  # no controller: unanswered

    def step(seconds: float) -> None:
        # Advance the agent's clock, then make it pump once more (a new event) and wait for that.
        clock[0] += seconds
        before = agent.journal.depth()
        agent.emit("load", {"n": before})
        wait_until(lambda: len(agent.sender.unacked) == before + 1, 10, "the pump ran")

    step(1.1)
    assert agent.sender.resends == 1  # waited 1 s: sent again, now waits 2 s
    step(1.5)
    assert agent.sender.resends == 1
    step(1.0)
    assert agent.sender.resends == 2  # 2.5 s > 2 s; next wait 4 s
    step(3.0)
    assert agent.sender.resends == 2
