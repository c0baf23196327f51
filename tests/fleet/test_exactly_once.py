"""Store and forward: events survive a kiosk's time offline, a broker restart and a controller kill."""

from __future__ import annotations

import signal
import threading
import time

from tests.fleet.conftest import spawn_controller, wait_until
from tests.fleet.conftest import stored_event_ids as _stored


def test_offline_kiosk_delivers_exactly_its_1000_events_after_broker_restart(broker, make_controller, make_kiosk,
                                                                                tmp_path):
    ctl = make_controller()
    kiosks = [make_kiosk(f"K-EO-{i}", ctl.public_key()) for i in range(3)]
    wait_until(lambda: ctl.list_kiosks(state="online")["total"] == 3, 10, "three online")
    broker.stop()
    wait_until(lambda: not kiosks[0].agent.connected, 10, "kiosk sees the broker gone")
    ids = {kiosks[0].agent.emit("bulk", {"n": n}) for n in range(1000)}
    assert kiosks[0].agent.journal.depth() >= 1000
    restarted = time.monotonic()
    broker.start()
    wait_until(lambda: ctl.list_kiosks(state="online")["total"] == 3 and all(k.agent.connected for k in kiosks),
               30, "every kiosk back online")
    assert time.monotonic() - restarted < 30
    wait_until(lambda: len(_stored(tmp_path / "controller", "K-EO-0", "bulk")) >= 1000, 30, "1000 events stored")
    # Once the journal is drained the kiosk has nothing left to send: no late duplicate can come.
    wait_until(lambda: kiosks[0].agent.journal.depth() == 0, 10, "journal drained after acknowledgements")
    stored = _stored(tmp_path / "controller", "K-EO-0", "bulk")
    assert len(stored) == 1000 and set(stored) == ids
    seqs = [e["seq"] for e in ctl.events(kiosk_id="K-EO-0", type="bulk", limit=1000)["items"]]
    assert sorted(seqs) == list(range(min(seqs), min(seqs) + 1000))


def test_controller_killed_under_load_loses_no_event(broker, make_kiosk, tmp_path, procs):
    data = tmp_path / "ctl"
    ctl = spawn_controller(broker, data, procs)
    kiosk = make_kiosk("K-LOAD")
    ids: list[str] = []

    def produce() -> None:
        for n in range(1000):
            ids.append(kiosk.agent.emit("load", {"n": n}))
            if n % 50 == 0:
                time.sleep(0.02)

    producer = threading.Thread(target=produce)
    producer.start()
    wait_until(lambda: len(_stored(data, "K-LOAD", "load")) > 100, 20, "ingest under way")
    ctl.signal(signal.SIGKILL)  # no clean stop: whatever it had not stored must come again
    ctl.proc.wait(10)
    producer.join(30)
    spawn_controller(broker, data, procs)
    wait_until(lambda: len(_stored(data, "K-LOAD", "load")) >= 1000, 40, "all 1000 stored")
    wait_until(lambda: kiosk.agent.journal.depth() == 0, 10, "journal drained: nothing more in flight")
    stored = _stored(data, "K-LOAD", "load")
    assert len(stored) == 1000 and set(stored) == set(ids)


def test_kiosks_republish_when_controller_returns(make_controller, make_kiosk, raw):
    first = make_controller("first")
    make_kiosk("K-RE", first.public_key())
    wait_until(lambda: (first.kiosk("K-RE") or {}).get("state") == "online", 10, "known to the first controller")
    first.stop()
    watcher = raw("watcher")
    watcher.subscribe("kiosk/v1/K-RE/status")  # the retained birth arrives once
    wait_until(lambda: watcher.messages, 10, "the retained birth")
    assert len(watcher.messages) == 1
    second = make_controller("second")
    # The controller's "online" makes the kiosk publish its birth again (a live copy, not the retained one).
    wait_until(lambda: len(watcher.messages) >= 2, 10, "birth re-published")
    wait_until(lambda: (second.kiosk("K-RE") or {}).get("state") == "online", 10, "known to the second controller")
