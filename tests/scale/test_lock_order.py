"""One global order for the kiosks' transaction locks (issue 16, controller.fleet_share): a run
of the singleton jobs that queues a command (an operator action) for one kiosk while the liveness
sweep handles another takes both kiosks' locks in one statement, in key order, before it applies
anything. Taking the command's kiosk first, and the sweep's later, deadlocked with another
instance's batch that locked the two in key order.

Real PostgreSQL; the jobs run is the controller's own (``Controller._shared_jobs``, what the lease
holder's worker runs), the other instance's batch is a second connection taking the same locks.
"""

from __future__ import annotations

import threading
import time

import paho.mqtt.client as mqtt
import psycopg

from controller import fleet_share, store
from controller.batches import kiosks_of
from controller.server import Controller
from foundation.settings import ControllerConfig, from_mapping
from tests.scale.test_several_controllers import _key
from tests.support.waiting import wait_until


def _two_kiosks(url: str) -> tuple[str, str]:
    """Two kiosk ids, the first with the lower lock key (the order every instance locks them in)."""
    with psycopg.connect(url) as conn:
        keys = {k: conn.execute("SELECT hashtext(%s)", (k,)).fetchone()[0] for k in ("K-LOCK-1", "K-LOCK-2")}
    low, high = sorted(keys, key=keys.__getitem__)
    return low, high


def _waiting_for(url: str, kiosk_id: str, holder_pid: int) -> bool:
    with psycopg.connect(url) as conn:
        return bool(conn.execute(
            "SELECT 1 FROM pg_locks WHERE locktype = 'advisory' AND classid = %s AND objid = hashtext(%s)::oid "
            "AND NOT granted AND pid <> %s", (fleet_share.KIOSK_LOCKS, kiosk_id, holder_pid)).fetchone())


def test_a_jobs_run_that_queues_a_command_locks_its_kiosks_in_the_global_order(postgres_url, tmp_path):
    key, _ = _key(tmp_path)
    config = from_mapping(ControllerConfig, {"broker": "mqtt://127.0.0.1:1", "data_dir": str(tmp_path / "a"),
                                             "database": postgres_url, "instance": "a", "telemetry_period": 1.0,
                                             "stale_after_periods": 2})
    ctl = Controller(config, signing_key=key)  # not started: its jobs run is driven from here
    low, high = _two_kiosks(postgres_url)
    now = time.time()
    ctl.state.listening_since = now - 200  # as if connected to the broker since long (Controller._on_connect)
    with ctl.store.tx() as s:  # the sweep's kiosk (silent for long) and an operator's command for the other
        s.upsert_kiosks([{"kiosk_id": low, "state": "online", "last_seen": now - 100, "state_since": now - 100}])
        store.enqueue_action(s.conn, "alice", "command", {"kiosk_id": high, "name": "set_mode",
                                                          "args": {"mode": "normal"}}, now)
    other = psycopg.connect(postgres_url, autocommit=True)  # another instance's batch: low, then high
    failures: list[BaseException] = []

    def jobs() -> None:
        try:
            ctl._shared_jobs(time.time(), (0.0, 0.0, 0.0))
        except BaseException as exc:  # noqa: BLE001 - reported by the test thread
            failures.append(exc)

    try:
        other.execute("SET lock_timeout = '10s'")
        other.execute("BEGIN")
        other.execute("SELECT pg_advisory_xact_lock(%s, hashtext(%s))", (fleet_share.KIOSK_LOCKS, low))
        runner = threading.Thread(target=jobs)
        runner.start()
        wait_until(lambda: _waiting_for(postgres_url, low, other.info.backend_pid), 20, "the jobs run waits for low")
        # Before the fix the run held high here (its command's kiosk), and this waited for it: deadlock.
        other.execute("SELECT pg_advisory_xact_lock(%s, hashtext(%s))", (fleet_share.KIOSK_LOCKS, high))
        other.execute("COMMIT")
        runner.join(30)
        assert not runner.is_alive() and not failures, failures
        with psycopg.connect(postgres_url) as conn:
            assert conn.execute("SELECT state FROM kiosks WHERE kiosk_id = %s", (low,)).fetchone()[0] == "stale"
            assert conn.execute("SELECT status FROM commands WHERE kiosk_id = %s", (high,)).fetchall() == [("queued",)]
            assert conn.execute("SELECT status FROM actions").fetchall() == [("done",)]
    finally:
        other.close()
        ctl.lease.close()
        ctl.store.close()
        ctl.sites.close()


def test_a_batch_locks_the_kiosks_of_the_commands_it_queues_with_its_messages():
    msg = mqtt.MQTTMessage(topic=b"kiosk/v1/K-B/telemetry")
    queue_command = (lambda store, now, out: None, None, ("K-A",))  # as Controller.send_command puts it
    other_call = (lambda store, now, out: None, None, ())
    assert sorted(kiosks_of([msg, queue_command, other_call])) == ["K-A", "K-B"]
