"""A command is not kept waiting behind a batch of telemetry (issue 16, 100,000 kiosks on two
instances): the lease holder's jobs run (operator actions) commits and publishes before the ingest
batch of the same step, and a gathered batch's command result is committed in a transaction of its
own, before the readings gathered with it (``controller.batches.deciding_first``).

Real PostgreSQL; unstarted controller instances driven through their own worker code
(``Controller._step``, ``Controller._run``); the readings and the result are built by the kiosk's
builders (``contract.payloads``, ``contract.commands``). Which transaction wrote a row is read from
PostgreSQL itself (``xmin``: transaction ids grow with each transaction that writes), so the order
is asserted, never a duration.
"""

from __future__ import annotations

import threading
import time

import psycopg
from psycopg import sql

from contract import commands as cmd_contract
from contract import topics
from controller import commands, store
from tests.scale.test_lanes import _message, _reading, _seed, instances  # noqa: F401 - fixture
from tests.support.waiting import wait_until

READINGS = 300  # a batch of readings, each of its own kiosk, gathered with the command's kiosk message


def _writers(url: str, where: str, params: tuple) -> set[int]:
    """The ids of the transactions that wrote the rows of ``where`` (``"table WHERE ..."``): ``xmin``."""
    with psycopg.connect(url) as conn:
        return {int(r[0]) for r in conn.execute(sql.SQL("SELECT xmin::text FROM " + where), params).fetchall()}  # type: ignore[arg-type]


def _stored(url: str, ids: list[str]) -> int:
    """How many of ``ids`` have the batch's reading (cpu 77) stored."""
    with psycopg.connect(url) as conn:
        return conn.execute("SELECT COUNT(*) FROM kiosks WHERE kiosk_id = ANY(%s) "
                            "AND (telemetry::jsonb ->> 'cpu')::float8 = 77", (ids,)).fetchone()[0]  # type: ignore[index]


def _fleet(ctl, now: float) -> list[str]:
    ids = [f"K-CF-{i:04d}" for i in range(READINGS)]
    for kiosk_id in ids:  # heard from just now (the jobs run's sweep leaves them online)
        _seed(ctl, kiosk_id, _reading(kiosk_id, now - 10), now)
    return ids


def test_the_lease_holders_jobs_commit_and_publish_a_command_before_the_ingest_batch(instances, postgres_url):  # noqa: F811
    ctl = instances("a")
    assert ctl.lease.held(time.time())  # the only instance: it takes the singleton-jobs lease
    now = time.time()
    ids = _fleet(ctl, now)
    _seed(ctl, "K-CF-CMD", _reading("K-CF-CMD", now - 10), now)
    with ctl.store.tx() as s:
        store.enqueue_action(s.conn, "alice", "command", {"kiosk_id": "K-CF-CMD", "name": "collect_diagnostics",
                                                          "args": {}}, now)
    published: list[str] = []
    ctl.client.publish = lambda topic, *a, **k: published.append(topic)  # type: ignore[method-assign]
    batch = [_message(k, "telemetry", _reading(k, now)) for k in ids]
    again, _, _ = ctl._step(batch, False, (0.0, 0.0, 0.0))
    assert again == []
    command = _writers(postgres_url, "commands WHERE kiosk_id = %s", ("K-CF-CMD",))
    readings = _writers(postgres_url, "kiosks WHERE kiosk_id = ANY(%s)", (ids,))
    assert len(command) == 1 and len(readings) == 1
    assert max(command) < min(readings), "the command was committed after the batch of readings"
    sent = [i for i, t in enumerate(published) if t.startswith(topics.topic("K-CF-CMD", "cmd/"))]
    assert sent == [0], published[:3]  # published first, before anything the batch sent


def test_a_result_gathered_behind_readings_is_committed_in_an_earlier_transaction(instances, postgres_url):  # noqa: F811
    ctl = instances("b")
    now = time.time()
    ids = _fleet(ctl, now)
    _seed(ctl, "K-CF-CMD", _reading("K-CF-CMD", now - 10), now)
    cmd = commands.new_command("K-CF-CMD", "collect_diagnostics", {}, "alice", now)
    with ctl.store.tx() as s:
        s.insert_command(cmd)
        s.update_command(cmd["id"], status="sent", sent_at=now)
    for kiosk_id in ids:  # the readings arrived first, the result last: one gathered batch
        ctl.inbox.put(_message(kiosk_id, "telemetry", _reading(kiosk_id, now, cpu=77.0)))
    ctl.inbox.put(_message("K-CF-CMD", "cmd/collect_diagnostics/result",
                           cmd_contract.result(cmd["id"], "K-CF-CMD", "ok", data={}), qos=1))
    ctl.client.ack = lambda *a, **k: None  # type: ignore[method-assign] # not connected
    worker = threading.Thread(target=ctl._run)
    worker.start()
    try:
        wait_until(lambda: _stored(postgres_url, ids) == READINGS, 30, "the readings stored")
    finally:
        ctl._stop.set()
        worker.join(10)
    with psycopg.connect(postgres_url) as conn:
        row = conn.execute("SELECT status FROM commands WHERE id = %s", (cmd["id"],)).fetchone()
    assert row == ("succeeded",)
    result = _writers(postgres_url, "commands WHERE id = %s", (cmd["id"],))
    readings = _writers(postgres_url, "kiosks WHERE kiosk_id = ANY(%s)", (ids,))
    assert len(readings) == 1 and max(result) < min(readings), "the result waited for the readings' commit"
