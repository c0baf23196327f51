"""Two controller instances on one PostgreSQL database serve the residents' service backend
(issue 16): real ``kiosk-controller`` processes started from their TOML configs (``instance``,
``database``, one signing key) sharing the kiosk topics, real kiosk agents at one community
centre taking queue tickets through both instances at once, the console of instance B in real
headless Chromium, the console API of instance A.

* the first ticket is taken while only A runs (so through A); B's queue page shows it waiting,
  and the operator calls it there;
* then kiosks that connect while both run take tickets at the same time: both instances answer,
  the numbers are unique and consecutive, and every ticket is in the centre's queue (a kiosk's
  birth may reach one instance and its first request the other);
* A's console API shows the same queue as B's page.

And the rule behind "every ticket in the centre's queue", made to happen: a kiosk's first request
reaches an instance that never saw its birth; and a service thread whose database connection
was ended reconnects.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import urllib.request
from pathlib import Path

import pytest

from contract import services, signing, topics
from controller import store_pg
from controller.server import Controller
from controller.store import Store
from foundation.backoff import Backoff
from foundation.settings import KioskConfig, from_mapping
from kiosk_ui.agent.agent import KioskAgent
from kiosk_ui.service_client import ServiceRefused
from kiosk_ui.service_client.over_mqtt import MqttServiceClient
from tests.console.test_browser_e2e import ARGS, CHROMIUM, signed_in_page
from tests.fleet.conftest import Raw, controller_config
from tests.support.processes import REPO, Proc
from tests.support.together import at_once, failures
from tests.support.waiting import wait_until

sync_api = pytest.importorskip("playwright.sync_api")
KIOSKCTL = str(REPO / ".venv" / "bin" / "kioskctl")
SITE = "centre-east"
KIOSKS, TICKETS_EACH = 5, 8


def _instance(broker, tmp_path: Path, name: str, database: str, key: Path, procs: list) -> tuple[Path, str]:
    """A ``kiosk-controller`` from its own TOML file; returns the file and its console's URL."""
    config = tmp_path / f"controller-{name}.toml"
    config.write_text(f'broker = "{broker.url}"\ndata_dir = "{tmp_path / f"ctl-{name}"}"\ninstance = "{name}"\n'
                      f'database = "{database}"\nsigning_key = "{key}"\nhttp = "127.0.0.1:0"\n', encoding="utf-8")
    ctl = Proc([sys.executable, "-m", "controller.cli", "--config", str(config)])
    procs.append(ctl)
    return config, ctl.wait_for("console http://", timeout=60).split(" ", 1)[1].strip()


def _kioskctl(config: Path, *argv: str) -> str:
    done = subprocess.run([KIOSKCTL, "--config", str(config), *argv], capture_output=True, text=True, timeout=60,
                          env={**os.environ, "KIOSKCTL_USER": "ops"})
    assert done.returncode == 0, done.stderr
    return done.stdout


def _agent(broker, tmp_path: Path, kiosk_id: str, public_key: str, made: list) -> MqttServiceClient:
    config = from_mapping(KioskConfig, {"kiosk_id": kiosk_id, "broker": broker.url, "keepalive": 2, "site": SITE,
                                        "data_dir": str(tmp_path / f"kiosk-{kiosk_id}"),
                                        "controller_public_key": public_key})
    agent = KioskAgent(config, backoff=Backoff(base=0.2, cap=2.0))
    agent.start(wait=10)
    made.append(agent)
    return MqttServiceClient(agent)


def _take(svc: MqttServiceClient) -> str:
    return svc.call("queue_ticket", "take", {"counter": "general"}, timeout=20)["number"]


def _answered(ctl: Proc) -> int:
    """Ticket requests this instance's service thread answered (its log)."""
    return sum(1 for line in ctl.stderr_lines if "service request" in line and "queue_ticket.take" in line)


def _api(url: str, token: str, path: str) -> dict:
    req = urllib.request.Request(url.rstrip("/") + path, headers={"Authorization": f"Bearer {token}"})
    with urllib.request.urlopen(req, timeout=20) as resp:
        return json.loads(resp.read())


@pytest.mark.skipif(not os.path.exists(CHROMIUM), reason="needs /usr/bin/chromium")
def test_two_instances_number_one_queue_and_show_it_alike(broker, procs, tmp_path, postgres_url, artifacts):
    key = signing.load_or_create_key(tmp_path / "fleet-key")
    key_file, public = tmp_path / "fleet-key" / signing.KEY_FILE, signing.public_key_text(key)
    config_a, url_a = _instance(broker, tmp_path, "a", postgres_url, key_file, procs)
    ctl_a = procs[-1]
    (tmp_path / "pw").write_text("otto-operator-pw\n", encoding="utf-8")
    _kioskctl(config_a, "user", "add", "otto", "--role", "operator", "--password-file", str(tmp_path / "pw"))
    token = _kioskctl(config_a, "api-token", "create", "queue-board").strip()
    agents: list[KioskAgent] = []
    try:
        first_kiosk = _agent(broker, tmp_path, "K-Q-00", public, agents)
        wait_until(lambda: first_kiosk.online, 15, "instance a seen online")
        first = _take(first_kiosk)  # only instance a runs: taken through a
        assert first == "A001"
        # The answer reached the kiosk before its log line reaches our reader of a's stderr.
        wait_until(lambda: _answered(ctl_a) == 1, 10, "instance a logged its answer")

        config_b, url_b = _instance(broker, tmp_path, "b", postgres_url, key_file, procs)
        ctl_b = procs[-1]
        services = [first_kiosk] + [_agent(broker, tmp_path, f"K-Q-{i:02d}", public, agents) for i in range(1, KIOSKS)]
        wait_until(lambda: all(s.online for s in services), 15, "the controllers seen online by every kiosk")
        queues = at_once(lambda svc: [_take(svc) for _ in range(TICKETS_EACH)], services, timeout=60)
        errors = failures(queues)
        assert not errors, errors
        numbers = [n for queue in queues for n in queue]
        total = 1 + KIOSKS * TICKETS_EACH
        assert sorted(numbers) == [f"A{n:03d}" for n in range(2, total + 1)]  # unique, consecutive, no gap
        wait_until(lambda: _answered(ctl_a) + _answered(ctl_b) == total, 10, "every answer logged")
        assert _answered(ctl_a) > 1 and _answered(ctl_b) > 0, (_answered(ctl_a), _answered(ctl_b))
        conn = store_pg.PgConnection(postgres_url)
        try:
            sites = conn.execute("SELECT site, COUNT(*) FROM svc_tickets GROUP BY site").fetchall()
        finally:
            conn.close()
        assert [tuple(r) for r in sites] == [(SITE, total)]  # every kiosk's first ticket in its centre's queue

        with sync_api.sync_playwright() as p:
            browser = p.chromium.launch(executable_path=CHROMIUM, args=ARGS)
            try:
                page = signed_in_page(browser, url_b, "otto", "otto-operator-pw")
                page.goto(url_b + f"sites/{SITE}/queue")
                general = page.locator("tbody tr").first
                sync_api.expect(general.locator("td").nth(1)).to_have_text(str(total))
                sync_api.expect(general.locator("td").nth(2)).to_have_text(first)  # taken through a
                page.screenshot(path=str(artifacts / "queue-instance-b.png"), full_page=True)
                general.locator("button.primary").click()
                sync_api.expect(page.locator("#queue-called")).to_contain_text(first)
            finally:
                browser.close()
    finally:
        for agent in agents:
            agent.stop()

    on_a = _api(url_a, token, f"/api/v1/sites/{SITE}/queue")
    general = next(c for c in on_a["counters"] if c["counter"] == "general")
    assert (general["waiting"], general["next"]) == (total - 1, "A002")
    assert [(c["number"], c["called_by"]) for c in on_a["called"]] == [(first, "otto")]


def test_a_first_request_waits_for_the_birth_another_instance_stores(broker, postgres_url, tmp_path):
    """The broker handed the kiosk's birth to instance A and its first ticket request to B: B's
    worker never sees the birth, so B polls the database until A's worker has stored it, and
    numbers the ticket in the kiosk's own centre's queue. Here A's worker is the fleet store's
    own writer, called once B has received the request."""
    b = Controller(controller_config(broker, tmp_path / "ctl-b", database=postgres_url, instance="b"))
    b.start()
    kiosk = Raw(broker, "K-LATE")
    try:
        assert b.wait_listening(10)
        kiosk.subscribe(topics.topic("K-LATE", "svc/response"))
        kiosk.publish(topics.topic("K-LATE", "svc/request"),
                      topics.encode(services.request("queue_ticket", "take", {"counter": "civil"})))
        # B's own worker has nothing of the kiosk: B now waits for the birth in the database.
        wait_until(lambda: b.counts.get("svc_birth_waits", 0) == 1, 10, "instance b waiting for the birth")
        store = Store(tmp_path / "ctl-a", postgres_url)  # instance a's worker storing the birth
        with store.tx() as s:
            s.upsert_kiosks([{"kiosk_id": "K-LATE", "site": SITE, "state": "online", "last_seen": 1.0,
                              "state_since": 1.0}])
        store.close()
        answer = kiosk.wait_json(lambda t, body: t.endswith("/svc/response"), 15)
    finally:
        kiosk.close()
        b.stop()
    assert services.parse_response(answer).data["number"] == "C001"
    assert "svc_birth_unseen" not in b.counts
    conn = store_pg.PgConnection(postgres_url)
    try:
        assert [tuple(r) for r in conn.execute("SELECT kiosk_id, site FROM svc_tickets")] == [("K-LATE", SITE)]
    finally:
        conn.close()


def test_the_service_thread_reconnects_after_losing_its_database_connection(make_controller, make_agent,
                                                                            postgres_url):
    """PostgreSQL ends the service thread's connection (a restart, a failover, an operator's
    ``pg_terminate_backend``): the connection is replaced before the next statement once its
    goodbye has arrived (PgConnection(reconnect=True)); a request that meets the connection dying
    mid-statement is refused as "try again" with nothing half-done kept; either way the resident's
    next ticket numbers on, none lost or taken twice."""
    from controller.service_thread import SERVICE_CONNECTION

    make_controller(database=postgres_url)
    svc = MqttServiceClient(make_agent("K-RECONNECT"))
    wait_until(lambda: svc.online, 10, "controller seen online through the agent")
    assert _take(svc) == "A001"
    conn = store_pg.PgConnection(postgres_url)
    try:
        ended = conn.execute("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE application_name = ?",
                             (SERVICE_CONNECTION,)).fetchall()
        assert [tuple(r) for r in ended] == [(True,)]
        try:
            number = _take(svc)
        except ServiceRefused as refused:  # the backend ended while this request's statement ran
            assert refused.code == "backend_unavailable"
            number = _take(svc)
        assert number == "A002"
        assert conn.execute("SELECT COUNT(*) FROM svc_tickets").fetchone()[0] == 2
    finally:
        conn.close()
