"""The fleet contract: MQTT topics and payloads, command signing, desired config, service catalogue.

One module per concern: ``topics`` (names, QoS/retain, codec), ``versions``, ``vocab``,
``payloads`` (status, telemetry, events, config), ``device_status``, ``commands``, ``services``.

Every part that crosses the fleet link builds and parses through this package. It imports only
:mod:`foundation` (``docs/architecture.md``).
"""
