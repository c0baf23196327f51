"""Fixtures for roll-out tests: the update tests' signed releases and kiosk roots, the fleet
tests' in-process controller, kiosk runtimes and raw clients, all on the real broker."""

from __future__ import annotations

from tests.fleet.conftest import kiosk_sims, make_controller, make_kiosk, raw  # noqa: F401 - fixtures
from tests.updates.conftest import kiosk, releases  # noqa: F401 - fixtures
