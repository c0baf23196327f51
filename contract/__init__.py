"""The fleet contract: MQTT topics and payloads, command signing, desired config, service catalogue.

Every part that crosses the fleet link builds and parses through this package. It imports only
:mod:`foundation` (``docs/architecture.md``).
"""
