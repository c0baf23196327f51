"""Fixtures for the security tests: a real TLS Mosquitto made from the generated fleet config,
the real controller connected to it with its own certificate, and kiosk identities issued by
the fleet CA (a "captured kiosk" is simply a client holding one of them)."""

from __future__ import annotations

import contextlib
import json

import pytest
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties

from controller.server import Controller
from foundation.settings import ControllerConfig, from_mapping
from tests.provisioning.conftest import Client, clock, enrol_ctx, enrol_server, fleet_dir, tls_broker
from tests.support.identities import Issuer

__all__ = ["clock", "enrol_ctx", "enrol_server", "fleet_dir", "tls_broker"]


@pytest.fixture
def identities(fleet_dir, tmp_path):
    """``identities(kiosk_id, site)`` -> (cert, key) of a freshly issued kiosk certificate."""
    with Issuer(fleet_dir, tmp_path / "ids") as issuer:
        yield issuer.issue


def tls_controller_config(fleet_dir, port: int) -> ControllerConfig:
    return from_mapping(ControllerConfig, {
        "broker": f"mqtts://127.0.0.1:{port}", "data_dir": str(fleet_dir.root / "controller"), "keepalive": 5,
        "ca_file": str(fleet_dir.ca_cert), "cert_file": str(fleet_dir.controller_cert),
        "key_file": str(fleet_dir.controller_key), "fleet_dir": str(fleet_dir.root)})


@pytest.fixture
def make_tls_controller(fleet_dir, tls_broker):
    """``make_tls_controller()`` -> a started controller, connected with its own certificate."""
    with contextlib.ExitStack() as running:
        def make(**kwargs) -> Controller:
            c = Controller(tls_controller_config(fleet_dir, tls_broker.port), **kwargs)
            c.start()
            running.callback(lambda: c._stop.is_set() or c.stop())
            assert c.wait_listening(10), "controller not subscribed within 10 s"
            return c

        yield make


@pytest.fixture
def kiosk_client(tls_broker, fleet_dir):
    """``kiosk_client((cert, key), client_id)`` -> a connected TLS client with that identity."""
    made: list[Client] = []

    def make(identity, client_id: str, *, connect: bool = True) -> Client:
        c = Client(tls_broker.port, fleet_dir.ca_cert, identity[0], identity[1], client_id)
        made.append(c)
        if connect:
            assert c.connect(), f"{client_id} could not connect"
        return c

    yield make
    for c in made:
        c.close()


def publish(client: Client, topic: str, payload: bytes | dict, *, response_topic: str | None = None,
            correlation: bytes | None = None, retain: bool = False) -> None:
    """Publish at QoS 1 and wait for the broker's PUBACK."""
    props = None
    if response_topic is not None or correlation is not None:
        props = Properties(PacketTypes.PUBLISH)
        if response_topic is not None:
            props.ResponseTopic = response_topic
        if correlation is not None:
            props.CorrelationData = correlation
    data = payload if isinstance(payload, bytes) else json.dumps(payload).encode()
    client.c.publish(topic, data, qos=1, retain=retain, properties=props).wait_for_publish(5)
