"""The acknowledgement through the broker configuration ``kiosk-provision init-fleet`` writes:
mutual TLS, identity from the certificate, the generated ACL. A real kiosk agent and the real
controller; the kiosk's journal drains only because the ACL lets it read its own ``events/ack``,
and another kiosk never sees it."""

from __future__ import annotations

from controller.server import Controller
from foundation.backoff import Backoff
from foundation.settings import ControllerConfig, KioskConfig, from_mapping
from kiosk_ui.agent.agent import KioskAgent
from tests.fleet.conftest import wait_until
from tests.provisioning.conftest import Client, fleet_dir, tls_broker  # noqa: F401 - fixtures shared
from tests.provisioning.test_broker_tls import identities  # noqa: F401 - fixture shared


def test_events_acknowledged_through_the_generated_acl(fleet_dir, tls_broker, identities, tmp_path):  # noqa: F811
    url = f"mqtts://127.0.0.1:{tls_broker.port}"
    ids = identities
    ctl = Controller(from_mapping(ControllerConfig, {
        "broker": url, "data_dir": str(tmp_path / "ctl"), "client_id": "_controller", "keepalive": 5,
        "ca_file": str(fleet_dir.ca_cert), "cert_file": str(fleet_dir.controller_cert),
        "key_file": str(fleet_dir.controller_key)}))
    ctl.start()
    snoop = Client(tls_broker.port, fleet_dir.ca_cert, *ids["kiosk-b"], "kiosk-b")
    agent = None
    try:
        assert snoop.connect()
        snoop.subscribe("kiosk/v1/kiosk-a/events/ack")
        snoop.subscribe("kiosk/v1/+/events/ack")
        cert, key = ids["kiosk-a"]
        agent = KioskAgent(from_mapping(KioskConfig, {
            "kiosk_id": "kiosk-a", "broker": url, "data_dir": str(tmp_path / "kiosk-a"), "keepalive": 5,
            "ca_file": str(fleet_dir.ca_cert), "cert_file": str(cert), "key_file": str(key)}),
            backoff=Backoff(base=0.2, cap=2.0), ack_wait=2.0)
        agent.start(wait=10)
        wait_until(lambda: agent.controller_online and agent.controller_acks, 10, "controller seen")
        sent = {agent.emit("load", {"n": n}) for n in range(20)}
        wait_until(lambda: agent.journal.depth() == 0, 20, "journal drained by the controller's acks")
        assert sent <= {e["id"] for e in ctl.events(kiosk_id="kiosk-a", limit=100)["items"]}
        # Kiosk B saw none of A's acknowledgements (the broker's read ACL, per message).
        assert not [t for t, _ in snoop.messages if t.startswith("kiosk/v1/kiosk-a/")]
    finally:
        if agent is not None:
            agent.stop()
        snoop.close()
        ctl.stop()
