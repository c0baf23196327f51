"""One poisoned message must not stop the controller's store (issue 14, item 1), against the
real TLS broker and the real controller: refused at parse with a counted reason, acknowledged,
and a record SQLite refuses is dropped without blocking later batches."""

from __future__ import annotations

from contract import topics
from tests.security.conftest import publish
from tests.support.waiting import wait_until

POISON = b'{"v":1,"state":"online","mode":"normal","boot_id":"b1","site":"x\\ud800"}'


def event(n: int) -> dict:
    return {"v": 1, "id": f"ev-{n}", "seq": n, "ts": 1.0, "type": "note"}


def test_surrogate_is_refused_at_parse_counted_and_acknowledged(identities, kiosk_client, make_tls_controller):
    ctl = make_tls_controller()
    a = kiosk_client(identities("kiosk-a"), "kiosk-kiosk-a")
    publish(a, topics.topic("kiosk-a", "status"), POISON)
    publish(a, topics.topic("kiosk-a", "events"), event(1))
    assert wait_until(lambda: ctl.events(kiosk_id="kiosk-a")["total"] == 1, 10)
    # A batch's counts are kept once its transaction committed: a moment after its rows are readable.
    assert wait_until(lambda: ctl.stats().get("rejected:bad_text") == 1, 10)
    ctl.stop()
    # A second controller on the same persistent session: the refused message was acknowledged,
    # so the broker has nothing to redeliver, and the store takes new messages.
    again = make_tls_controller()
    publish(a, topics.topic("kiosk-a", "events"), event(2))
    assert wait_until(lambda: again.events(kiosk_id="kiosk-a")["total"] == 2, 10)
    assert again.counts["rejected"] == 0


def test_nan_and_infinity_are_refused_at_parse(identities, kiosk_client, make_tls_controller):
    ctl = make_tls_controller()
    a = kiosk_client(identities("kiosk-a"), "kiosk-kiosk-a")
    publish(a, topics.topic("kiosk-a", "status"), {"v": 1, "state": "online", "mode": "normal"})
    for text in (b"NaN", b"Infinity", b"-Infinity"):
        publish(a, topics.topic("kiosk-a", "telemetry"), b'{"v":1,"uptime":5,"cpu":' + text + b"}")
    assert wait_until(lambda: ctl.counts.get("rejected:bad_number") == 3, 10)
    detail = ctl.kiosk("kiosk-a")
    assert detail is not None and detail["telemetry"] == {}


def test_a_record_the_store_refuses_is_dropped_not_retried_forever(identities, kiosk_client, make_tls_controller):
    ctl = make_tls_controller()
    a = kiosk_client(identities("kiosk-a"), "kiosk-kiosk-a")
    publish(a, topics.topic("kiosk-a", "status"), {"v": 1, "state": "online", "mode": "normal", "site": "s-1"})
    assert wait_until(lambda: (ctl.kiosk("kiosk-a") or {}).get("state") == "online", 10)

    def poison(store, now, out):
        # Whatever a future handler lets through: a value SQLite cannot bind in a dirty record.
        ctl.state.kiosks["kiosk-a"]["mode"] = "x\ud800"
        ctl.state.dirty.add("kiosk-a")

    ctl._call(poison)
    for n in range(1, 4):
        publish(a, topics.topic("kiosk-a", "events"), event(n))
    assert wait_until(lambda: ctl.events(kiosk_id="kiosk-a")["total"] == 3, 10)
    assert wait_until(lambda: ctl.stats().get("dropped:kiosks") == 1, 10)  # kept once its batch committed
    assert "kiosk-a" not in ctl.state.dirty
    assert ctl.state.kiosks["kiosk-a"]["mode"] == "normal"  # back to what was stored


def test_invented_contract_versions_do_not_grow_the_counters(identities, kiosk_client, make_tls_controller):
    ctl = make_tls_controller()
    a = kiosk_client(identities("kiosk-a"), "kiosk-kiosk-a")
    for major in range(2, 200):
        publish(a, topics.topic("kiosk-a", "telemetry"), {"v": major, "uptime": 1})
    publish(a, topics.topic("kiosk-a", "events"), event(1))
    assert wait_until(lambda: ctl.events(kiosk_id="kiosk-a")["total"] == 1, 20)
    # The last batch's counts are kept once it committed: a moment after its event is readable.
    assert wait_until(lambda: ctl.stats().get("refused_version:other", 0) > 100, 10), ctl.stats()
    names = [k for k in ctl.stats() if k.startswith("refused_version:")]
    assert len(names) <= 17
