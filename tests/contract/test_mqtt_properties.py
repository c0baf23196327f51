"""paho's MQTT v5 properties with shared lookup tables behave exactly as paho's own."""

from __future__ import annotations

import pytest
from paho.mqtt.exception import MQTTException
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties

from contract.mqtt_properties import share_property_tables, unshare_property_tables


def _publish_props() -> Properties:
    p = Properties(PacketTypes.PUBLISH)
    p.ResponseTopic = "kiosk/v1/K-1/svc/response"
    p.CorrelationData = b"\x00\x01corr"
    p.MessageExpiryInterval = 30
    p.UserProperty = ("trace", "abc")
    p.UserProperty = ("queue", "north")
    return p


def _connack_props() -> Properties:
    p = Properties(PacketTypes.CONNACK)
    p.SessionExpiryInterval = 3600
    p.ReceiveMaximum = 20
    p.AssignedClientIdentifier = "ctl-1"
    return p


@pytest.fixture
def shared():
    share_property_tables()
    yield
    share_property_tables()  # the rest of the suite runs as the product does


@pytest.mark.parametrize("build", [_publish_props, _connack_props])
def test_pack_and_unpack_match_paho_own_constructor(shared, build) -> None:
    unshare_property_tables()
    own = build()
    own_bytes = own.pack()
    share_property_tables()
    ours = build()
    assert ours.pack() == own_bytes
    back = Properties(ours.packetType)
    back.unpack(own_bytes)
    assert back.json() == own.json()
    assert str(back) == str(own)


def test_paho_checks_still_refuse_bad_properties(shared) -> None:
    p = Properties(PacketTypes.PUBLISH)
    with pytest.raises(MQTTException):
        p.NoSuchProperty = 1
    with pytest.raises(MQTTException):
        p.SessionExpiryInterval = 10  # a CONNECT/CONNACK property, not a PUBLISH one


def test_instances_do_not_share_values_and_tables_are_read_only(shared) -> None:
    a, b = Properties(PacketTypes.PUBLISH), Properties(PacketTypes.PUBLISH)
    a.ResponseTopic = "x"
    assert not hasattr(b, "ResponseTopic")
    with pytest.raises(TypeError):
        a.names["Invented"] = 99  # type: ignore[index]


def test_clear_removes_every_value_as_paho_does(shared) -> None:
    p = _publish_props()
    p.clear()
    assert p.pack() == Properties(PacketTypes.PUBLISH).pack()
    assert not hasattr(p, "ResponseTopic") and not hasattr(p, "UserProperty")
    p.ResponseTopic = "again"  # still usable after clearing
    assert p.ResponseTopic == "again"
