"""Shared and exclusive kiosk locks (issue 16, ``controller.fleet_share``): a batch locks the kiosks
whose messages decide nothing (telemetry, events no rule reads) shared, the others exclusive.

Real PostgreSQL; both instances are the controller's own worker (``Controller._step``, what the
worker thread runs per batch) on unstarted controllers; the messages are built by the kiosk's own
builders (``contract.payloads``) and encoded as the agent sends them. Where a test needs one
instance to stop inside its transaction, a third connection holds what that instance waits for
(a kiosk's row lock, or its advisory lock) and lets go when the test says.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import paho.mqtt.client as mqtt
import psycopg
import pytest

from contract import payloads, topics, updates
from controller import fleet_share, store_pg
from controller.server import Controller
from foundation.settings import ControllerConfig, from_mapping
from tests.scale.test_several_controllers import _key
from tests.support.waiting import wait_until

KIOSK = "K-LANE-1"


@pytest.fixture
def instances(postgres_url, tmp_path) -> Iterator[Callable[[str], Controller]]:
    """``instances(name)``: an unstarted controller instance on the test's database."""
    key, _ = _key(tmp_path)
    made: list[Controller] = []

    def make(name: str) -> Controller:
        config = from_mapping(ControllerConfig, {"broker": "mqtt://127.0.0.1:1", "data_dir": str(tmp_path / name),
                                                 "database": postgres_url, "instance": name,
                                                 "telemetry_period": 1.0, "stale_after_periods": 2})
        ctl = Controller(config, signing_key=key)
        ctl.state.listening_since = time.time() - 200  # as if connected since long (Controller._on_connect)
        made.append(ctl)
        return ctl

    yield make
    for ctl in made:
        ctl.lease.close()
        ctl.store.close()
        ctl.sites.close()


def _message(kiosk_id: str, kind: str, body: dict[str, Any], qos: int = 0) -> mqtt.MQTTMessage:
    msg = mqtt.MQTTMessage(topic=topics.topic(kiosk_id, kind).encode())
    msg.payload = topics.encode(body)
    msg.qos = qos
    msg.timestamp = time.monotonic()
    return msg


def _reading(kiosk_id: str, ts: float, *, cpu: float = 10.0, enclosure: float = 30.0) -> dict[str, Any]:
    return payloads.telemetry(kiosk_id, ts=ts, uptime=100, cpu=cpu, memory=20.0, disk=30.0, temperature=40.0,
                              enclosure_temperature=enclosure, devices={}, queue_depth=0, mode="normal")


def _seed(ctl: Controller, kiosk_id: str, reading: dict[str, Any], last_seen: float) -> None:
    """A known, online kiosk whose stored reading is ``reading``."""
    with ctl.store.tx() as s:
        s.upsert_kiosks([{"kiosk_id": kiosk_id, "state": "online", "last_seen": last_seen, "state_since": last_seen,
                          "telemetry": payloads.parse_telemetry(reading).to_dict(), "last_telemetry": last_seen}])


def _step(ctl: Controller, batch: list[Any], exclusive: bool = False) -> tuple[list[Any], bool]:
    again, exclusive, _ = ctl._step(batch, exclusive, (0.0, 0.0, 0.0))
    return again, exclusive


def _row(url: str, kiosk_id: str) -> dict[str, Any]:
    conn = store_pg.PgConnection(url)
    try:
        row = conn.execute("SELECT * FROM kiosks WHERE kiosk_id = ?", (kiosk_id,)).fetchone()
        return dict(row)
    finally:
        conn.close()


def _stored_reading(url: str, kiosk_id: str) -> dict[str, Any]:
    return json.loads(_row(url, kiosk_id)["telemetry"])


def _waits(url: str, sql: str) -> Callable[[], bool]:
    """True once some backend waits on a lock (``sql``: a pg_locks condition)."""
    return lambda: bool(_query(url, f"SELECT 1 FROM pg_locks WHERE NOT granted AND {sql}"))


@contextmanager
def _row_held(url: str) -> Iterator[psycopg.Connection]:
    """The kiosk's row locked by a third connection (rolled back to let go): an instance's
    transaction stops at its readings' write, after its locks and reads, before its commit."""
    blocker = psycopg.connect(url)
    try:
        blocker.execute("SELECT 1 FROM kiosks WHERE kiosk_id = %s FOR UPDATE", (KIOSK,))
        yield blocker
    finally:
        blocker.close()


def _until_before_commit(ctl: Controller, url: str, message: mqtt.MQTTMessage, waits_on: str) -> Background:
    step = Background(lambda: _step(ctl, [message]))
    wait_until(_waits(url, f"locktype = '{waits_on}'"), 20, f"the instance waits on a {waits_on} lock")
    return step


def _query(url: str, sql: str, params: tuple = ()) -> list[tuple]:
    conn = store_pg.PgConnection(url)
    try:
        return [tuple(r) for r in conn.execute(sql, params)]
    finally:
        conn.close()


class Background:
    """Run a controller's step on another thread (it may wait on a lock), and its result."""

    def __init__(self, fn: Callable[[], Any]) -> None:
        self.result: Any = None
        self.error: BaseException | None = None
        self.thread = threading.Thread(target=self._run, args=(fn,), daemon=True)
        self.thread.start()

    def _run(self, fn: Callable[[], Any]) -> None:
        try:
            self.result = fn()
        except BaseException as exc:  # noqa: BLE001 - reported by the test thread
            self.error = exc

    def join(self) -> Any:
        self.thread.join(30)
        assert not self.thread.is_alive(), "the step did not finish"
        if self.error is not None:
            raise self.error
        return self.result


def test_a_shared_lane_batch_does_not_wait_for_another_instances_shared_lane_batch(instances, postgres_url):
    ctl = instances("b")
    t0 = time.time()
    _seed(ctl, KIOSK, _reading(KIOSK, t0 - 30), t0 - 30)
    other = store_pg.PgConnection(postgres_url)  # instance A's batch on the same kiosk, holding its lock
    try:
        other.execute("BEGIN")
        fleet_share.lock_kiosks(other, [], shared=[KIOSK])
        step = Background(lambda: _step(ctl, [_message(KIOSK, "telemetry", _reading(KIOSK, t0, cpu=55.0))]))
        assert step.join() == ([], False)  # done beside A's shared lock, which A still holds
        assert _stored_reading(postgres_url, KIOSK)["cpu"] == 55.0
        # A deciding message (a birth) of the same kiosk does wait for A's commit.
        birth = payloads.birth(KIOSK, mode="normal", boot_id="b-2", site="", versions={}, devices=[], ts=t0)
        deciding = Background(lambda: _step(ctl, [_message(KIOSK, "status", birth, qos=1)]))
        wait_until(_waits(postgres_url, f"locktype = 'advisory' AND classid = {fleet_share.KIOSK_LOCKS}"), 20,
                   "the birth waits for A's shared lock")
        assert deciding.thread.is_alive()
        other.execute("COMMIT")
        assert deciding.join() == ([], False)
        assert _row(postgres_url, KIOSK)["boot_id"] == "b-2"
    finally:
        other.close()


def test_a_deciding_message_waits_for_the_shared_lane_and_then_sees_the_committed_reading(instances, postgres_url):
    a, b = instances("a"), instances("b")
    t0 = time.time()
    _seed(a, KIOSK, _reading(KIOSK, t0 - 60), t0 - 60)
    with _row_held(postgres_url) as blocker:
        first = _until_before_commit(a, postgres_url, _message(KIOSK, "telemetry", _reading(KIOSK, t0 - 30, cpu=77.0)),
                                     "transactionid")
        # B: a delta (what a 1.2 kiosk sends between snapshots) that raises enclosure_hot. In the
        # shared lane beside A it would decide: deferred, to be done with the exclusive lock.
        delta = payloads.telemetry_delta(_reading(KIOSK, t0 - 30, cpu=77.0), _reading(KIOSK, t0, cpu=77.0,
                                                                                      enclosure=70.0))
        assert "cpu" not in delta and delta["enclosure_temperature"] == 70.0
        again, exclusive = _step(b, [_message(KIOSK, "telemetry", delta)])
        assert (len(again), exclusive) == (1, True)
        second = Background(lambda: _step(b, again, exclusive))
        wait_until(_waits(postgres_url, f"locktype = 'advisory' AND classid = {fleet_share.KIOSK_LOCKS}"), 20,
                   "B waits for A's shared lock")
        assert second.thread.is_alive()
        blocker.rollback()
        assert first.join() == ([], False)
        assert second.join() == ([], False)
    stored = _stored_reading(postgres_url, KIOSK)
    # Merged onto A's committed reading (cpu 77 came from A's snapshot, not from the delta).
    assert (stored["cpu"], stored["enclosure_temperature"], stored["ts"]) == (77.0, 70.0, round(t0, 1))
    assert _query(postgres_url, "SELECT rule FROM alarms WHERE kiosk_id = ? AND cleared_at IS NULL",
                  (KIOSK,)) == [("enclosure_hot",)]


def test_an_older_reading_never_overwrites_a_newer_one_across_instances(instances, postgres_url):
    a, b = instances("a"), instances("b")
    t0 = time.time()
    _seed(a, KIOSK, _reading(KIOSK, t0 - 60), t0 - 60)
    # Both instances read the stored reading (t0 - 60), then wait for the row: A with the newer
    # reading first, B with an older one (late through its backlog) after.
    with _row_held(postgres_url) as blocker:
        newer = _until_before_commit(a, postgres_url, _message(KIOSK, "telemetry", _reading(KIOSK, t0, cpu=20.0)),
                                     "transactionid")
        older = _until_before_commit(b, postgres_url,
                                     _message(KIOSK, "telemetry", _reading(KIOSK, t0 - 30, cpu=90.0)), "tuple")
        blocker.rollback()
        assert newer.join() == ([], False)
        assert older.join() == ([], False)
    stored = _stored_reading(postgres_url, KIOSK)
    assert (stored["ts"], stored["cpu"]) == (round(t0, 1), 20.0)
    assert b.counts.get("telemetry_late") == 1
    # The late reading still says the kiosk was heard: liveness counts it.
    assert _row(postgres_url, KIOSK)["last_seen"] >= t0 - 1
    # Later, on a fresh read: an older reading is late there too (the handler's check).
    assert _step(b, [_message(KIOSK, "telemetry", _reading(KIOSK, t0 - 10, cpu=91.0))]) == ([], False)
    assert _stored_reading(postgres_url, KIOSK)["cpu"] == 20.0
    assert b.counts.get("telemetry_late") == 2


def test_a_delta_merged_onto_a_reading_another_instance_replaced_is_merged_again(instances, postgres_url):
    a, b = instances("a"), instances("b")
    t0 = time.time()
    _seed(a, KIOSK, _reading(KIOSK, t0 - 60), t0 - 60)
    full = _reading(KIOSK, t0 - 30, cpu=66.0)  # a snapshot: cpu changed
    # The kiosk's next message: a delta after that snapshot, carrying only the memory that changed.
    delta = payloads.telemetry_delta(full, {**full, "ts": round(t0, 1), "memory": 45.0})
    assert "cpu" not in delta
    with _row_held(postgres_url) as blocker:
        first = _until_before_commit(a, postgres_url, _message(KIOSK, "telemetry", full), "transactionid")
        second = _until_before_commit(b, postgres_url, _message(KIOSK, "telemetry", delta), "tuple")
        blocker.rollback()
        assert first.join() == ([], False) and second.join() == ([], False)
    stored = _stored_reading(postgres_url, KIOSK)
    # B read the reading of t0 - 60 (cpu 10), but its delta follows A's snapshot: cpu 66 stays.
    assert (stored["ts"], stored["cpu"], stored["memory"]) == (round(t0, 1), 66.0, 45.0)


def test_a_reading_that_raises_an_alarm_in_the_shared_lane_is_deferred_and_raised_once(instances, postgres_url):
    a, b = instances("a"), instances("b")
    t0 = time.time()
    _seed(a, KIOSK, _reading(KIOSK, t0 - 60), t0 - 60)
    _seed(a, "K-LANE-2", _reading("K-LANE-2", t0 - 60), t0 - 60)
    hot = [_message(KIOSK, "telemetry", _reading(KIOSK, t0 - 1 + i, enclosure=70.0)) for i in range(2)]
    calm = _message("K-LANE-2", "telemetry", _reading("K-LANE-2", t0, cpu=12.0))
    again, exclusive = _step(a, [hot[0], calm])
    assert again == [hot[0]] and exclusive  # the hot one waits for the exclusive lock; the calm one is stored
    assert _stored_reading(postgres_url, "K-LANE-2")["cpu"] == 12.0
    assert _stored_reading(postgres_url, KIOSK)["enclosure_temperature"] == 30.0
    assert a.counts["received"] == 1 and a.counts["deferred"] == 1
    again_b, exclusive_b = _step(b, [hot[1]])  # the other instance meets the next hot reading
    assert again_b == [hot[1]] and exclusive_b
    assert _step(a, again, True) == ([], False)
    assert _step(b, again_b, True) == ([], False)
    # Raised once, by whichever came first.
    assert _query(postgres_url, "SELECT rule FROM alarms WHERE kiosk_id = ?", (KIOSK,)) == [("enclosure_hot",)]
    assert a.counts["received"] == 2 and b.counts["received"] == 1


def test_the_sweep_does_not_turn_stale_a_kiosk_whose_reading_is_committed_under_a_shared_lock(instances,
                                                                                               postgres_url):
    a, jobs = instances("a"), instances("jobs")
    t0 = time.time()
    _seed(a, KIOSK, _reading(KIOSK, t0 - 100), t0 - 100)  # silent for long: the sweep's candidate
    with _row_held(postgres_url) as blocker:
        reading = _until_before_commit(a, postgres_url, _message(KIOSK, "telemetry", _reading(KIOSK, t0)),
                                       "transactionid")
        sweep = Background(lambda: jobs._shared_jobs(time.time(), (0.0, 0.0, 0.0)))
        wait_until(_waits(postgres_url, f"locktype = 'advisory' AND classid = {fleet_share.KIOSK_LOCKS}"), 20,
                   "the sweep waits for the kiosk's exclusive lock")
        blocker.rollback()
        assert reading.join() == ([], False)
        sweep.join()
    row = _row(postgres_url, KIOSK)
    assert row["state"] == "online" and row["last_seen"] >= t0 - 1
    # Without the reading the same sweep does turn it stale (the test can fail).
    _seed(a, "K-LANE-2", _reading("K-LANE-2", t0 - 100), t0 - 100)
    jobs._shared_jobs(time.time(), (0.0, 0.0, 0.0))
    assert _row(postgres_url, "K-LANE-2")["state"] == "stale"


def test_a_batch_done_again_after_a_lost_race_tells_listeners_and_counts_once(instances, postgres_url):
    ctl = instances("a")
    told: list[tuple[str, Any]] = []
    ctl.update_listeners.append(lambda kiosk_id, st, now: told.append((kiosk_id, st.state)))
    t0 = time.time()
    low, high = sorted(["K-LANE-1", "K-LANE-2"], key=lambda k: _hashtext(postgres_url, k))
    for k in (low, high):
        _seed(ctl, k, _reading(k, t0 - 60), t0 - 60)
    batch = [_message(low, "update/state", updates.state(low, state="downloading", version="2.0.0", ts=t0), qos=1),
             _message(high, "telemetry", _reading(high, t0))]
    other = psycopg.connect(postgres_url)
    try:
        other.execute("SET deadlock_timeout = '20s'")  # the controller's side finds the deadlock
        other.execute("SELECT pg_advisory_xact_lock(%s, hashtext(%s))", (fleet_share.KIOSK_LOCKS, high))
        race = Background(lambda: _step(ctl, batch))
        wait_until(_waits(postgres_url, f"locktype = 'advisory' AND classid = {fleet_share.KIOSK_LOCKS}"), 20,
                   "the batch holds low and waits for high")
        closing = Background(lambda: other.execute("SELECT pg_advisory_xact_lock(%s, hashtext(%s))",
                                                    (fleet_share.KIOSK_LOCKS, low)))
        again, _ = race.join()
        assert again == batch  # it lost the race: nothing applied, to be done again
        closing.join()
        other.rollback()
        assert told == [] and ctl.counts["received"] == 0
        assert _step(ctl, again) == ([], False)
        assert told == [(low, "downloading")]
        assert ctl.counts["received"] == 2
        assert ctl.tally.unsaved == {}
        assert dict(_query(postgres_url, "SELECT name, value FROM counters"))["received"] == 2
    finally:
        other.close()


def _hashtext(url: str, kiosk_id: str) -> int:
    return _query(url, "SELECT hashtext(?)", (kiosk_id,))[0][0]


def test_lock_table_holds_two_instances_batches(postgres_url, tmp_path: Path):
    """Two instances each holding a full batch's kiosk locks (``BATCH``, shared and exclusive
    mixed) and the sweep's ``SWEEP_MAX``, on PostgreSQL's default lock table."""
    from controller.batches import BATCH
    conns = [store_pg.PgConnection(postgres_url) for _ in range(3)]
    try:
        ids = [f"K-LOCKS-{i:05d}" for i in range(BATCH)]
        for conn in conns:
            conn.execute("BEGIN")
        fleet_share.lock_kiosks(conns[0], ids[::2], shared=ids[1::2])
        fleet_share.lock_kiosks(conns[1], [], shared=ids[1::2] + [f"K-LOCKS-B{i:05d}" for i in range(BATCH // 2)])
        fleet_share.lock_kiosks(conns[2], [f"K-LOCKS-S{i:05d}" for i in range(fleet_share.SWEEP_MAX)])
        held = conns[2].execute("SELECT count(*) FROM pg_locks WHERE locktype = 'advisory'").fetchone()[0]
        assert held == 2 * BATCH + fleet_share.SWEEP_MAX
    finally:
        for conn in conns:
            conn.close()
