"""Cheap MQTT v5 property objects for paho-mqtt: its lookup tables built once, not per packet.

paho-mqtt 2.x's ``Properties.__init__`` builds three lookup tables (the property names, types
and which packets each may appear in: some fifty entries) for every instance, and paho makes one
for every PUBLISH it receives and every PUBACK it reads. Profiling the controller under province
telemetry and an event burst showed this constructor as the largest single cost of receiving a
message (about 50 us of the ~100 us paho spends per message on the shared machine).

:func:`share_property_tables` makes every instance use one read-only copy of those tables, taken
from an instance built by paho's own constructor (so a paho upgrade that changes them is
followed), and its ``clear`` (run before every unpack) looks the names up in that shared tuple.
The tables are never written by paho after construction; read-only mappings make sure
of that (a write would raise instead of silently changing every instance). Everything else about
``Properties`` (packing, unpacking, the checks on ``setattr``) is paho's own code.
"""

from __future__ import annotations

import types
from typing import Any

from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties

_original_init = Properties.__init__
_original_clear = Properties.clear


def share_property_tables() -> None:
    """Patch ``paho.mqtt.properties.Properties`` once (idempotent) to share its lookup tables."""
    if getattr(Properties, "_tables_shared", False):
        return
    model = Properties(PacketTypes.PUBLISH)
    tables = {
        "types": tuple(model.types),
        "names": types.MappingProxyType(dict(model.names)),
        "properties": types.MappingProxyType({k: (t, tuple(packets)) for k, (t, packets) in model.properties.items()}),
    }

    compressed = tuple(name.replace(" ", "") for name in model.names)

    def __init__(self: Any, packetType: int) -> None:  # noqa: N807 - paho's signature
        self.__dict__.update(tables, packetType=packetType)

    def clear(self: Any) -> None:
        # paho's clear() rebuilds each name without spaces and asks hasattr for every one of
        # them before each unpack; the values live in the instance's dict under those names.
        values = self.__dict__
        for name in compressed:
            values.pop(name, None)

    Properties.__init__ = __init__  # type: ignore[method-assign]
    Properties.clear = clear  # type: ignore[method-assign]
    Properties._tables_shared = True  # type: ignore[attr-defined]


def unshare_property_tables() -> None:
    """Back to paho's own constructor (for comparing the two in tests)."""
    Properties.__init__ = _original_init  # type: ignore[method-assign]
    Properties.clear = _original_clear  # type: ignore[method-assign]
    Properties._tables_shared = False  # type: ignore[attr-defined]
