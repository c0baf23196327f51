"""What a kiosk is, read by every controller instance from the fleet database (issue 16): two
real controllers on one private PostgreSQL, the real Mosquitto, a real kiosk agent.

* The contract version a kiosk announced in its birth: an instance that never saw that birth
  (retained births do not reach shared subscriptions) sends the kiosk the desired config its
  version reads, not the 1.0 one.
* The kiosk's enrolled site: an instance without a copy of the fleet folder files the kiosk at the
  site of the certificate the fleet CA issued, not at the site its birth claims.
"""

from __future__ import annotations

import json

from contract import versions
from controller.server import Controller
from foundation.settings import ControllerConfig, from_mapping
from kiosk_ui.agent.agent import KioskAgent
from provisioning import fleet_ca, pki
from tests.scale.test_several_controllers import _agent, _key, _query
from tests.support.identities import PASSPHRASE
from tests.support.waiting import wait_until


def _controller(broker, tmp_path, postgres_url, name: str, key, made: list, **settings) -> Controller:
    config = from_mapping(ControllerConfig, {"broker": broker.url, "data_dir": str(tmp_path / name), "keepalive": 5,
                                             "database": postgres_url, "instance": name, **settings})
    ctl = Controller(config, signing_key=key)
    ctl.start()
    assert ctl.wait_listening(10)
    made.append(ctl)
    return ctl


def _reported(url: str, kiosk_id: str) -> dict:
    rows = _query(url, "SELECT reported FROM kiosks WHERE kiosk_id = ?", (kiosk_id,))
    return json.loads(rows[0][0]) if rows else {}


def test_an_instance_that_never_saw_the_birth_sends_the_config_the_kiosk_announced(broker, postgres_url, tmp_path):
    key, public = _key(tmp_path)
    made: list[Controller] = []
    agents: list[KioskAgent] = []
    try:
        _controller(broker, tmp_path, postgres_url, "a", key, made)  # the only instance at the birth
        _agent(broker, tmp_path, "K-VER", public, agents)
        wait_until(lambda: _query(postgres_url, "SELECT contract FROM kiosks WHERE kiosk_id = 'K-VER'")
                   == [(versions.CURRENT,)], 20, "the birth's contract stored by a")
        b = _controller(broker, tmp_path, postgres_url, "b", key, made)
        version = b.config_set("fleet", {"telemetry_interval": 60}, "alice")
        wait_until(lambda: _reported(postgres_url, "K-VER").get("version") == version, 30, "config reported")
        reported = _reported(postgres_url, "K-VER")
        # time_zone goes only to kiosks whose birth said 1.3 or newer: b read that from the database.
        # This agent runs without a kiosk runtime, so it names the keys it got but cannot apply
        # (sent the 1.0 config, {"telemetry_interval": 60} alone, it would have applied it).
        assert reported["status"] == "rejected", reported
        assert reported["reason"] == "no kiosk runtime here applies time_zone", reported
    finally:
        for agent in agents:
            agent.stop()
        for ctl in made:
            ctl.stop()


def test_an_instance_without_the_fleet_folder_files_a_kiosk_at_its_certificates_site(broker, postgres_url, tmp_path):
    lay = fleet_ca.init_fleet(tmp_path / "fleet", PASSPHRASE, hosts=["127.0.0.1"], broker_url=broker.url)
    index = fleet_ca.CertIndex(lay.index)
    try:  # issued offline (kiosk-provision issue): only the fleet folder's index knows it
        fleet_ca.issue_identity(fleet_ca.load_ca(lay, PASSPHRASE), index, "K-SITE", "site-1", pki.utcnow())
    finally:
        index.close()
    key, public = _key(tmp_path)
    made: list[Controller] = []
    agents: list[KioskAgent] = []
    try:
        a = _controller(broker, tmp_path, postgres_url, "a", key, made, fleet_dir=str(lay.root))
        a.stop()  # it has copied the index into the fleet database; the kiosk's birth goes to b
        b = _controller(broker, tmp_path, postgres_url, "b", key, made)
        _agent(broker, tmp_path, "K-SITE", public, agents, site="site-2")
        # The birth, not the telemetry that may overtake it (QoS 0 is not held in the broker's window).
        wait_until(lambda: (b.kiosk("K-SITE") or {}).get("boot_id"), 20, "birth handled by b")
        assert b.kiosk("K-SITE")["site"] == "site-1"
        # Counted in the birth's transaction, kept once it committed: a moment after the row is readable.
        wait_until(lambda: b.stats().get("site_claim_refused") == 1, 10, "the refused site claim counted")
    finally:
        for agent in agents:
            agent.stop()
        for ctl in made[1:]:
            ctl.stop()
