"""One controller on SQLite, SIGKILLed and down for 20 s while kiosks send 50 events/s: when it
returns every event is stored exactly once. The broker queues at most 100 messages for the
offline controller, so the kiosks' journals, not the broker, decide what survives.

The long version (5 minutes at 500/s) is ``python -m benchmarks.controller_downtime`` (docs/benchmarks.md).
"""

from __future__ import annotations

import signal
import threading
import time

import pytest

from tests.fleet.conftest import spawn_controller, stored_event_ids, wait_until
from tests.support.broker import Mosquitto

KIOSKS = 5
RATE = 50.0  # events per second over all kiosks
DOWN_EVENTS = 1000  # 20 s at 50/s sent while the controller is dead
BROKER_QUEUE = 100


@pytest.fixture
def broker(tmp_path):
    b = Mosquitto(tmp_path / "broker", extra_config=[f"max_queued_messages {BROKER_QUEUE}"]).start()
    yield b
    b.stop()


def test_controller_down_20s_under_load_every_event_stored_exactly_once(broker, make_agent, tmp_path, procs):
    data = tmp_path / "ctl"
    ctl = spawn_controller(broker, data, procs)
    agents = [make_agent(f"K-DOWN-{i}", ack_wait=2.0) for i in range(KIOSKS)]
    wait_until(lambda: all(a.controller_acks and a.controller_online for a in agents), 10, "controller seen")
    ids: list[str] = []
    stop = threading.Event()

    def produce() -> None:
        # Paced by the clock (a load generator, not synchronisation): RATE events/s, round robin.
        start = time.monotonic()
        while not stop.is_set():
            due = int((time.monotonic() - start) * RATE)
            while len(ids) < due:
                ids.append(agents[len(ids) % KIOSKS].emit("load", {"n": len(ids)}))
            stop.wait(0.01)

    producer = threading.Thread(target=produce)
    producer.start()
    try:
        wait_until(lambda: len(stored_event_ids(data, None, "load")) > 100, 20, "ingest under way")
        ctl.signal(signal.SIGKILL)
        ctl.proc.wait(10)
        killed_at = len(ids)
        wait_until(lambda: len(ids) >= killed_at + DOWN_EVENTS, 60, "20 s of events sent to a dead controller")
        held = sum(a.journal.depth() for a in agents)
        assert held > BROKER_QUEUE  # more than the broker would have kept: the journals hold them
        spawn_controller(broker, data, procs)
        wait_until(lambda: len(stored_event_ids(data, None, "load")) > killed_at + 200, 60, "ingest resumed")
    finally:
        stop.set()
        producer.join(10)
    wait_until(lambda: all(a.journal.depth() == 0 for a in agents), 60, "every journal drained by acks")
    stored = stored_event_ids(data, None, "load")
    assert len(stored) == len(ids) == len(set(stored)) and set(stored) == set(ids)
