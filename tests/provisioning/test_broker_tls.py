"""The generated Mosquitto configuration, against a real broker: mutual TLS, ACL, CRL."""

from __future__ import annotations

import signal

import pytest

from provisioning import pki, revocation
from tests.provisioning.conftest import Client
from tests.support.identities import PASSPHRASE, Issuer, write_identity
from tests.support.waiting import wait_until


@pytest.fixture
def identities(fleet_dir, tmp_path):
    with Issuer(fleet_dir, tmp_path / "ids") as issuer:
        out = {kid: issuer.issue(kid, "site-1") for kid in ("kiosk-a", "kiosk-b")}
    out["_controller"] = (fleet_dir.controller_cert, fleet_dir.controller_key)
    return out


@pytest.fixture
def connect(tls_broker, fleet_dir):
    made: list[Client] = []

    def make(identity, client_id=None) -> Client:
        cert, key = identity if identity else (None, None)
        c = Client(tls_broker.port, fleet_dir.ca_cert, cert, key, client_id or f"c{len(made)}")
        made.append(c)
        return c

    yield make
    for c in made:
        c.close()


def test_kiosk_cannot_touch_another_kiosks_topics(connect, identities):
    a, b, ctl = (connect(identities[k]) for k in ("kiosk-a", "kiosk-b", "_controller"))
    assert a.connect() and b.connect() and ctl.connect()
    assert not b.subscribe("kiosk/v1/kiosk-b/#").is_failure
    assert not ctl.subscribe("kiosk/v1/+/events").is_failure
    # Mosquitto 2.0.11 grants the SUBACK and applies the read ACL to each message delivered,
    # so what matters is what arrives: nothing of B's, neither exact nor through a wildcard.
    a.subscribe("kiosk/v1/kiosk-b/#")
    a.subscribe("kiosk/v1/+/cmd/#")
    a.c.publish("kiosk/v1/kiosk-b/cmd/reboot", b'{"v":1}', qos=1).wait_for_publish(5)
    ctl.c.publish("kiosk/v1/kiosk-b/cmd/ping", b'{"v":1,"to":"b"}', qos=1).wait_for_publish(5)
    ctl.c.publish("kiosk/v1/kiosk-a/cmd/ping", b'{"v":1,"to":"a"}', qos=1).wait_for_publish(5)
    a.c.publish("kiosk/v1/kiosk-a/events", b'{"v":1,"from":"a"}', qos=1).wait_for_publish(5)
    assert wait_until(lambda: ("kiosk/v1/kiosk-a/cmd/ping", b'{"v":1,"to":"a"}') in a.messages)
    assert wait_until(lambda: ("kiosk/v1/kiosk-a/events", b'{"v":1,"from":"a"}') in ctl.messages)
    assert wait_until(lambda: ("kiosk/v1/kiosk-b/cmd/ping", b'{"v":1,"to":"b"}') in b.messages)
    # A's forged command never reached B, and A never saw B's command.
    assert [t for t, _ in b.messages] == ["kiosk/v1/kiosk-b/cmd/ping"]
    assert all(t.startswith("kiosk/v1/kiosk-a/") for t, _ in a.messages)


def test_kiosk_reads_controller_status_but_cannot_fake_it(connect, identities):
    a, ctl = connect(identities["kiosk-a"]), connect(identities["_controller"])
    assert a.connect() and ctl.connect()
    assert not a.subscribe("kiosk/v1/_controller/status").is_failure
    a.c.publish("kiosk/v1/_controller/status", b'{"v":1,"state":"offline"}', qos=1).wait_for_publish(5)
    ctl.c.publish("kiosk/v1/_controller/status", b'{"v":1,"state":"online"}', qos=1, retain=True).wait_for_publish(5)
    assert wait_until(lambda: a.messages)
    assert a.messages == [("kiosk/v1/_controller/status", b'{"v":1,"state":"online"}')]


def test_unknown_certificate_and_anonymous_are_refused(connect, tmp_path):
    stranger_ca = pki.CA(*pki.create_ca(pki.utcnow(), name="Someone Else"))
    key = pki.new_ec_key()
    cert = stranger_ca.issue_client("kiosk-a", key.public_key(), pki.utcnow())
    assert not connect(write_identity(tmp_path, "stranger", key, cert)).connect(timeout=3)
    assert not connect(None).connect(timeout=3)


def test_plain_tcp_is_refused(tls_broker):
    import paho.mqtt.client as mqtt

    c = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id="plain", protocol=mqtt.MQTTv5)
    acks, closed = [], []
    c.on_connect = lambda *a: acks.append(a[3])
    c.on_disconnect = lambda *a: closed.append(a[3])
    try:
        c.connect("127.0.0.1", tls_broker.port)
        c.loop_start()
        # A refused connection never acknowledges: wait for the broker to close it (or for an
        # acknowledgement), not for a while with nothing said.
        wait_until(lambda: acks or closed, 10, "the broker's answer to plain MQTT on its TLS port")
    except OSError:
        pass
    finally:
        c.loop_stop()
    assert not acks or acks[0].is_failure


def test_revoked_certificate_is_refused_after_reload(connect, identities, fleet_dir, tls_broker):
    assert connect(identities["kiosk-a"]).connect()
    serials = revocation.revoke(fleet_dir, PASSPHRASE, "kiosk-a", reason="stolen")
    assert len(serials) == 1
    msg = revocation.reload_broker(pid=tls_broker.proc.pid)
    assert "SIGHUP" in msg and signal.SIGHUP
    # SIGHUP on Mosquitto 2.0 re-reads the CRL: the next handshake of A fails, B is unaffected.
    assert wait_until(lambda: not connect(identities["kiosk-a"]).connect(timeout=2), timeout=10)
    assert connect(identities["kiosk-b"]).connect()


def test_revoke_unknown_kiosk_names_the_problem(fleet_dir):
    from foundation.errors import ProvisioningError

    with pytest.raises(ProvisioningError, match="no certificate was ever issued"):
        revocation.revoke(fleet_dir, PASSPHRASE, "nobody")
