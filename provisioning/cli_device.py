"""``kiosk-provision`` subcommands that talk to the kiosk's hardware: flash-firmware, self-test."""

from __future__ import annotations


def register(sub) -> None:
    """Added as the hardware steps land (flash-firmware, self-test)."""
