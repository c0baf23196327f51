"""A kiosk's device states handled out of order by two real controller instances on one PostgreSQL:
the real agent publishes the printer's ``paper out`` and then ``paper back`` (its own builder,
``device_status.body`` with its ``ts``), the instance that took ``paper out`` is paused until the
other one has stored ``paper back``, and then handles it late. The stored state stays ``paper
back``, no paper-out alarm is open, and the late one is counted as ``device_superseded``.

Which instance gets which message is the broker's share decision; when the running instance got
``paper out`` instead (the order came right), the round is repeated with the other one paused.
"""

from __future__ import annotations

import json
import signal

from contract import device_status
from tests.scale.test_several_controllers import _agent, _instance, _key, _query
from tests.support.waiting import wait_until

KIOSK = "K-DEVORDER"
PAPER_OUT = device_status.build("idle", device_status.printer_detail(known=True, paper="out"))
PAPER_OK = device_status.build("idle", device_status.printer_detail(known=True, paper="ok"))


def _stored(url: str) -> tuple[float | None, str, float | None]:
    """The printer's stored ts and fault in the devices table, and the ts the kiosk record holds."""
    rows = _query(url, "SELECT body FROM devices WHERE kiosk_id = ? AND name = 'printer'", (KIOSK,))
    body = json.loads(rows[0][0]) if rows else {}
    rec = _query(url, "SELECT devices FROM kiosks WHERE kiosk_id = ?", (KIOSK,))
    held = json.loads(rec[0][0]).get("printer", {}) if rec else {}
    return body.get("ts"), body.get("fault", ""), held.get("ts")


def _open_paper_alarms(url: str) -> int:
    return len(_query(url, "SELECT id FROM alarms WHERE kiosk_id = ? AND rule = 'paper_out' AND cleared_at IS NULL",
                      (KIOSK,)))


def _superseded(url: str) -> int:
    rows = _query(url, "SELECT value FROM counters WHERE name = 'device_superseded'")
    return rows[0][0] if rows else 0


def test_paper_out_handled_after_paper_back_leaves_the_printer_fine(broker, postgres_url, tmp_path, procs, raw):
    key, public = _key(tmp_path)
    ctls = [_instance(broker, tmp_path, n, postgres_url, key, procs) for n in ("a", "b")]
    watcher = raw("watcher")
    watcher.subscribe(f"kiosk/v1/{KIOSK}/devices/printer")
    agents: list = []
    agent = _agent(broker, tmp_path, KIOSK, public, agents)
    printer = {"printer": PAPER_OK}
    agent.device_status = lambda: dict(printer)

    def publish(st: device_status.DeviceStatus, after: float) -> float:
        """Let the real agent publish ``st``; the ts it sent (read back from the broker)."""
        printer["printer"] = st
        agent.poll_devices()
        body = watcher.wait_json(lambda _t, b: b.get("fault") == st.fault and b.get("ts", 0) > after, 15)
        return body["ts"]

    try:
        wait_until(lambda: agent.controller_online, 15, "the kiosk sees the controllers")
        last = publish(PAPER_OUT, 0.0)  # a first state, so that PAPER_OK below is a change
        last = publish(PAPER_OK, last)
        wait_until(lambda: _stored(postgres_url)[0] == last, 15, "the first states stored")
        for round_ in range(6):
            paused = ctls[round_ % 2]
            before = _superseded(postgres_url)
            paused.signal(signal.SIGSTOP)
            try:
                out_ts = publish(PAPER_OUT, last)
                ok_ts = publish(PAPER_OK, out_ts)
                # The running instance stores one of the two; the paused one holds the other.
                seen = wait_until(lambda o=out_ts, k=ok_ts: (t := _stored(postgres_url)[0]) in (o, k) and t, 15,
                                  "the running instance's device state")
            finally:
                paused.signal(signal.SIGCONT)
            last = ok_ts
            if seen == ok_ts:
                # The paused instance handles "paper out" now, after "paper back" was stored.
                wait_until(lambda b=before, k=ok_ts: _superseded(postgres_url) > b or _stored(postgres_url)[0] != k, 15,
                           "the late paper-out handled")
                assert _stored(postgres_url) == (ok_ts, "", ok_ts)
                assert _open_paper_alarms(postgres_url) == 0
                assert _superseded(postgres_url) == before + 1
                return
            # The order came right: "paper back" follows and clears the alarm the first one raised.
            wait_until(lambda k=ok_ts: _stored(postgres_url) == (k, "", k) and _open_paper_alarms(postgres_url) == 0,
                       15, "paper back applied after paper out")
        raise AssertionError("the broker never gave 'paper out' to the paused instance")
    finally:
        for a in agents:
            a.stop()
