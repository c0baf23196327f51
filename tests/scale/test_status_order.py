"""Issue 16 across controller instances: two real controller processes on one PostgreSQL share the
kiosk topics; the same kiosk (one boot) connects again, the broker publishes the old connection's
will on the session take-over, and that will is handled by one instance *after* the other applied
the new connection's birth. The kiosk stays online, and the late will is counted.

Which instance gets which status is the broker's share decision, so the instance that is to handle
the will late is paused (SIGSTOP) during the take-over; if the broker gave it the birth instead
(the will was applied first, which is harmless), the round is repeated with the other instance paused.
"""

from __future__ import annotations

import signal
from pathlib import Path

from foundation.backoff import Backoff
from foundation.settings import KioskConfig, from_mapping
from kiosk_ui.agent.agent import KioskAgent
from tests.scale.test_several_controllers import _instance, _key, _query
from tests.support.waiting import wait_until

KIOSK = "K-ORDER"


def _row(url: str) -> tuple | None:
    rows = _query(url, "SELECT state, status_stamp FROM kiosks WHERE kiosk_id = ?", (KIOSK,))
    return tuple(rows[0]) if rows else None


def _superseded(url: str) -> int:
    rows = _query(url, "SELECT value FROM counters WHERE name = 'status_superseded'")
    return rows[0][0] if rows else 0


def _connect(broker, data_dir: Path, public: str, boot_id: str | None, made: list) -> KioskAgent:
    """The kiosk's agent; ``boot_id``: the same boot connecting again. A taken-over connection must
    not come back and take the session over in turn, so it waits an hour before reconnecting."""
    config = from_mapping(KioskConfig, {"kiosk_id": KIOSK, "broker": broker.url, "keepalive": 2,
                                        "data_dir": str(data_dir), "controller_public_key": public})
    agent = KioskAgent(config, backoff=Backoff(base=3600, cap=3600))
    if boot_id is not None:
        agent.boot_id = boot_id
    agent.start(wait=10)
    made.append(agent)
    return agent


def test_old_connections_will_after_the_new_birth_on_another_instance_keeps_the_kiosk_online(
        broker, postgres_url, tmp_path, procs):
    key, public = _key(tmp_path)
    ctls = [_instance(broker, tmp_path, n, postgres_url, key, procs) for n in ("a", "b")]
    agents: list[KioskAgent] = []
    try:
        old = _connect(broker, tmp_path / "kiosk", public, None, agents)
        wait_until(lambda: _row(postgres_url) == ("online", old.stamp), 15, "first birth stored")
        # Each round gives the paused instance the will about half the time: 12 rounds miss 1 in 4,096.
        for round_ in range(12):
            paused = ctls[round_ % 2]
            before = _superseded(postgres_url)
            paused.signal(signal.SIGSTOP)
            try:
                new = _connect(broker, tmp_path / f"kiosk-{round_}", public, old.boot_id, agents)
                assert new.stamp is not None and old.stamp is not None and new.stamp > old.stamp
                # The running instance handles one of the two: the new birth, or the old will.
                either = (("online", new.stamp), ("offline", old.stamp))
                seen = wait_until(lambda e=either: (r := _row(postgres_url)) in e and r, 15,
                                  "the running instance's status")
            finally:
                paused.signal(signal.SIGCONT)
            if seen == ("online", new.stamp):
                # The paused instance holds the old connection's will, now handled after the birth.
                wait_until(lambda b=before: _superseded(postgres_url) > b or _row(postgres_url)[0] != "online",
                           15, "the late will handled")
                assert _row(postgres_url) == ("online", new.stamp)
                assert _superseded(postgres_url) == before + 1
                return
            wait_until(lambda n=new: _row(postgres_url) == ("online", n.stamp), 15, "the late birth applied")
            old = new
        raise AssertionError("the broker never gave the old connection's will to the paused instance")
    finally:
        for a in agents:
            a.stop()
