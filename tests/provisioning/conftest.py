"""Fixtures for provisioning tests: a fleet folder, a TLS broker with its generated config,
an enrolment server in a thread, and helpers to connect MQTT clients with a given identity."""

from __future__ import annotations

import ssl
import threading
import time
from pathlib import Path

import paho.mqtt.client as mqtt
import pytest

from controller import enrolment_service
from controller.enrolment_server import EnrolmentServer, open_context
from provisioning import fleet_ca
from tests.support.broker import Mosquitto, free_port
from tests.support.identities import PASSPHRASE


@pytest.fixture
def fleet_dir(tmp_path) -> fleet_ca.Layout:
    return fleet_ca.init_fleet(tmp_path / "fleet", PASSPHRASE, hosts=["localhost", "127.0.0.1"],
                            broker_url="mqtts://127.0.0.1:1")


@pytest.fixture
def tls_broker(tmp_path, fleet_dir):
    port = free_port()
    # "user root": the tests run as root and mosquitto would otherwise drop to user mosquitto,
    # which cannot read the 0600 server key (in production the key is owned by mosquitto).
    b = Mosquitto(tmp_path / "broker", port=port, listener_config=fleet_dir.listener(port, "127.0.0.1"),
                  extra_config=["user root"]).start()
    yield b
    b.stop()


class Clock:
    def __init__(self, t: float | None = None) -> None:
        self.t = time.time() if t is None else t

    def __call__(self) -> float:
        return self.t


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def enrol_ctx(fleet_dir, clock, tmp_path, fleet_database):
    """The enrolment endpoint's context; its tokens in the fleet database of ``fleet_database``."""
    ctx = open_context(fleet_dir.root, PASSPHRASE, broker_url="mqtts://127.0.0.1:8883", clock=clock,
                       database=fleet_database)
    yield ctx
    ctx.index.close()
    ctx.conn.close()


@pytest.fixture
def enrol_server(enrol_ctx):
    server = EnrolmentServer(enrol_ctx).start()
    yield server
    server.stop()


def token(ctx: enrolment_service.EnrolmentContext, site: str = "tianhe-001", **kw) -> str:
    return enrolment_service.issue_token(ctx.conn, site, now=ctx.clock(), **kw)["token"]


class Client:
    """A paho MQTTv5 client with a TLS identity that records CONNACK, SUBACK and messages."""

    def __init__(self, port: int, ca: Path, cert: Path | None, key: Path | None, client_id: str) -> None:
        self.port = port
        self.connack: list = []
        self.subacks: list = []
        self.messages: list[tuple[str, bytes]] = []
        self.event = threading.Event()
        self.c = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id=client_id, protocol=mqtt.MQTTv5)
        self.c.tls_set(ca_certs=str(ca), certfile=str(cert) if cert else None, keyfile=str(key) if key else None,
                       cert_reqs=ssl.CERT_REQUIRED)
        self.c.on_connect = lambda c, u, f, rc, p: (self.connack.append(rc), self.event.set())
        self.c.on_subscribe = lambda c, u, mid, rcs, p: (self.subacks.append(rcs), self.event.set())
        self.c.on_message = lambda c, u, m: self.messages.append((m.topic, m.payload))
        self.c.on_connect_fail = lambda c, u: self.event.set()
        self.c.on_disconnect = lambda c, u, f, rc, p: self.event.set()

    def connect(self, timeout: float = 5.0) -> bool:
        """True if the broker accepted the connection."""
        try:
            self.c.connect("127.0.0.1", self.port, keepalive=10)
        except (OSError, ssl.SSLError):
            return False
        self.c.loop_start()
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline and not self.connack:
            if self.event.wait(0.1) and not self.connack:
                self.event.clear()
                if not self.c.is_connected():
                    break
        return bool(self.connack) and not self.connack[0].is_failure

    def subscribe(self, topic: str, timeout: float = 5.0):
        n = len(self.subacks)
        self.c.subscribe(topic, qos=1)
        deadline = time.monotonic() + timeout
        while len(self.subacks) == n and time.monotonic() < deadline:
            time.sleep(0.02)
        return self.subacks[n][0] if len(self.subacks) > n else None

    def close(self) -> None:
        self.c.disconnect()
        self.c.loop_stop()

