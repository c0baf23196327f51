"""When the controller returns, does a kiosk send its unacknowledged events again at once? The
controller's presence decides (``queued_while_away``, docs/mqtt.md; ``kiosk_ui.agent.resend_rule``).
Real controller processes SIGKILLed and started again, the real broker, a real kiosk agent whose
acknowledgement wait (60 s) is far longer than the test, so only the presence rule can be at work:

* one controller with a persistent session says the broker queued what was sent while it was away:
  the kiosk does not send again, the controller takes the queued events, each arrives once;
* an instance of several (a clean session) does not say it: the broker kept nothing for it, and the
  kiosk sends everything unacknowledged again at once when the presence turns online.
"""

from __future__ import annotations

import signal
import sys
import uuid

from contract import payloads, signing, topics
from controller import store_pg
from foundation.backoff import Backoff
from foundation.settings import KioskConfig, from_mapping
from kiosk_ui.agent.agent import KioskAgent
from tests.fleet.conftest import spawn_controller, stored_event_ids
from tests.support.processes import Proc
from tests.support.waiting import wait_until

ACK_WAIT = 60.0  # longer than every wait below: a timed re-send cannot drain the journal here
EVENTS = 20


def _agent(broker, tmp_path, kiosk_id: str) -> KioskAgent:
    key = signing.public_key_text(signing.load_or_create_key(tmp_path / "key"))
    config = from_mapping(KioskConfig, {"kiosk_id": kiosk_id, "broker": broker.url, "keepalive": 2,
                                        "data_dir": str(tmp_path / kiosk_id), "controller_public_key": key})
    agent = KioskAgent(config, backoff=Backoff(base=0.2, cap=2.0), ack_wait=ACK_WAIT)
    agent.start(wait=10)
    return agent


def _down_and_back(agent: KioskAgent, ctl: Proc, restart) -> list[str]:
    """SIGKILL the controller, journal EVENTS events while it is away, start it again; the ids."""
    wait_until(lambda: agent.controller_online and agent.controller_acks, 20, "the controller seen online")
    ctl.signal(signal.SIGKILL)
    ctl.proc.wait(10)
    wait_until(lambda: not agent.controller_online, 20, "its will: offline")
    ids = [agent.emit("while_away", {"n": n}) for n in range(EVENTS)]
    # Published while the controller is away (the sender thread's own map, only read here).
    wait_until(lambda: len(agent.sender.unacked) >= EVENTS, 20, "all sent while the controller is away")
    restart()
    wait_until(lambda: agent.journal.depth() == 0, 30, "every event acknowledged")
    return ids


def _says_queued(raw) -> bool:
    """The flag of the controller's retained presence as a kiosk reads it (the contract's parser)."""
    watcher = raw(f"watch-{uuid.uuid4().hex[:8]}")  # closed by the fixture
    watcher.subscribe(topics.CONTROLLER_STATUS)
    wait_until(lambda: watcher.messages, 10, "the retained presence")
    body = topics.decode(watcher.messages[-1][1])
    return payloads.parse_controller_status(body) and payloads.controller_queued_while_away(body)


def test_one_controller_with_a_persistent_session_gets_the_queued_events_once(broker, tmp_path, procs, raw):
    data = tmp_path / "ctl"
    ctl = spawn_controller(broker, data, procs)
    assert not _says_queued(raw)  # a first start: the broker kept no session for it, nothing queued
    agent = _agent(broker, tmp_path, "K-QUEUED")
    try:
        ids = _down_and_back(agent, ctl, lambda: spawn_controller(broker, data, procs))
        assert _says_queued(raw)  # back on the session the broker kept
        assert agent.sender.resends == 0  # nothing sent twice: the broker had queued them for the controller
    finally:
        agent.stop()
    stored = stored_event_ids(data, "K-QUEUED", "while_away")
    assert sorted(stored) == sorted(ids)


def test_an_instance_with_a_clean_session_gets_them_again_at_once(broker, tmp_path, procs, postgres_url):
    def instance() -> Proc:
        ctl = Proc([sys.executable, "-m", "tests.fleet.run_controller", "--broker", broker.url, "--data-dir",
                    str(tmp_path / "ctl-a"), "--database", postgres_url, "--instance", "a"])
        procs.append(ctl)
        ctl.wait_for("controller online", 30)
        return ctl

    agent = _agent(broker, tmp_path, "K-AGAIN")
    try:
        ids = _down_and_back(agent, instance(), instance)
        assert agent.sender.resends >= 1  # the presence lacks queued_while_away: sent again when it returned
    finally:
        agent.stop()
    conn = store_pg.PgConnection(postgres_url)
    try:
        stored = [r[0] for r in conn.execute("SELECT id FROM events WHERE type = 'while_away'")]
    finally:
        conn.close()
    assert sorted(stored) == sorted(ids)
