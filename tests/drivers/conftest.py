"""Every driver a test opens is closed after it, so no reader thread outlives its test."""

from __future__ import annotations

import pytest

from device_drivers import serial_link


@pytest.fixture(autouse=True)
def _close_links(monkeypatch):
    opened: list[serial_link.SerialLink] = []
    original = serial_link.SerialLink.__init__

    def tracking_init(self, *args, **kwargs):
        original(self, *args, **kwargs)
        opened.append(self)

    monkeypatch.setattr(serial_link.SerialLink, "__init__", tracking_init)
    yield
    for link in opened:
        link.close()
