"""Port lookup by stable /dev/serial/by-id name."""

from __future__ import annotations

import pytest

from device_drivers.transport import find_by_id
from foundation.errors import TransportError


def test_find_by_id_needs_exactly_one_match(tmp_path):
    for name in ("usb-1a86_USB_Serial-if00-port0", "usb-FTDI_FT232R_A10K1234-if00-port0",
                 "usb-FTDI_FT232R_A10K5678-if00-port0"):
        (tmp_path / name).touch()
    assert find_by_id("1a86", str(tmp_path)).endswith("usb-1a86_USB_Serial-if00-port0")
    with pytest.raises(TransportError, match="2 ports"):
        find_by_id("FTDI", str(tmp_path))
    assert find_by_id("A10K5678", str(tmp_path)).endswith("A10K5678-if00-port0")
    with pytest.raises(TransportError, match="does not exist"):
        find_by_id("x", str(tmp_path / "missing"))
