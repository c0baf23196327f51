"""The fleet link contract (MQTT topics and JSON payloads), shared by controller and kiosk agent."""
