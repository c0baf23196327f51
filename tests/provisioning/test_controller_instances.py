"""Controller instances of a fleet with several (issue 16): ``kiosk-provision add-controller`` issues
the certificate ``controller-NAME``, writes its controller.toml and names it in the broker ACL; the
real controller started from that file serves the fleet over init-fleet's mutual-TLS broker."""

from __future__ import annotations

import signal

import pytest

from controller import store_pg
from controller.server import Controller
from foundation.errors import ConfigError
from foundation.settings import ControllerConfig, KioskConfig, from_mapping, load_toml
from kiosk_ui.agent.agent import KioskAgent
from provisioning import fleet_ca, pki
from tests.support.identities import PASSPHRASE, Issuer
from tests.support.waiting import wait_until


def test_instances_need_postgresql_and_kiosks_cannot_take_an_instance_name(tmp_path, fleet_dir):
    with pytest.raises(ConfigError) as err:
        fleet_ca.init_fleet(tmp_path / "other", PASSPHRASE, hosts=["localhost"], instances=("a",))
    assert err.value.field == "database"
    assert not (tmp_path / "other").exists()  # refused before anything was written
    ca = fleet_ca.load_ca(fleet_dir, PASSPHRASE)
    index = fleet_ca.CertIndex(fleet_dir.index)
    try:
        with pytest.raises(ConfigError, match="reserved for controller instances"):
            fleet_ca.issue_identity(ca, index, "controller-a", "site-1", pki.utcnow())
    finally:
        index.close()
    with pytest.raises(ConfigError) as err:
        fleet_ca.add_controller_instance(fleet_dir, ca, "bad name", broker_url="mqtts://127.0.0.1:1",
                                         database="postgresql://x@127.0.0.1/x", now=pki.utcnow())
    assert err.value.field == "instance"


def test_added_instance_serves_the_fleet_over_tls(tmp_path, fleet_dir, tls_broker, postgres_url):
    ca = fleet_ca.load_ca(fleet_dir, PASSPHRASE)
    toml = fleet_ca.add_controller_instance(fleet_dir, ca, "b", broker_url="mqtts://127.0.0.1:1",
                                            database=postgres_url, now=pki.utcnow())
    assert "user controller-b\ntopic readwrite kiosk/v1/#" in fleet_dir.acl.read_text()
    with pytest.raises(Exception, match="exists already"):
        fleet_ca.add_controller_instance(fleet_dir, ca, "b", broker_url="mqtts://127.0.0.1:1",
                                         database=postgres_url, now=pki.utcnow())
    assert tls_broker.proc is not None
    tls_broker.proc.send_signal(signal.SIGHUP)  # what add-controller --broker-pid does: read the new ACL
    with Issuer(fleet_dir, tmp_path / "ids") as issuer:
        cert_file, key_file = issuer.issue("kiosk-i1")
    url = f"mqtts://127.0.0.1:{tls_broker.port}"
    config = load_toml(ControllerConfig, toml, {"broker": url, "keepalive": 5})
    assert config.instance == "b" and config.mqtt_client_id == "controller-b"
    ctl = Controller(config)
    agent = KioskAgent(from_mapping(KioskConfig, {
        "kiosk_id": "kiosk-i1", "broker": url, "data_dir": str(tmp_path / "kiosk"), "ca_file": str(fleet_dir.ca_cert),
        "cert_file": str(cert_file), "key_file": str(key_file), "keepalive": 5,
        "controller_public_key": ctl.public_key()}), device_status=lambda: {}, ack_wait=2.0)
    try:
        ctl.start()
        agent.start(wait=20)
        assert wait_until(lambda: agent.controller_online and agent.controller_acks, timeout=20)
        ids = {agent.emit("load", {"n": n}) for n in range(20)}
        # Through the shared subscription into PostgreSQL, acknowledged back over the kiosk's ACL.
        assert wait_until(lambda: agent.journal.depth() == 0, timeout=20)
        conn = store_pg.PgConnection(postgres_url)
        try:
            assert {r[0] for r in conn.execute("SELECT id FROM events WHERE type = 'load'")} == ids
        finally:
            conn.close()
        # The command-signing key is the fleet's (init-fleet's), so the kiosk verifies commands.
        rec = ctl.wait_command(ctl.send_command("kiosk-i1", "set_mode", {"mode": "maintenance"}, "alice"), 10)
        assert rec["status"] == "failed" and "command runtime" in rec["error"], rec
    finally:
        agent.stop()
        ctl.stop()
