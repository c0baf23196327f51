"""Provisioning, the technician's tool: fleet CA, kiosk identities, enrolment, broker config, flashing, self-test."""
