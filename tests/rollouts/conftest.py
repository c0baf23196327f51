"""Fixtures for roll-out tests: the update tests' signed releases and kiosk roots, the fleet
tests' in-process controller, kiosk runtimes and raw clients, all on the real broker."""

from __future__ import annotations

from pathlib import Path

import pytest

from contract import signing
from controller import rollout_job
from controller.server import Controller
from tests.fleet.conftest import controller_config, kiosk_sims, make_controller, make_kiosk, raw  # noqa: F401 - fixtures
from tests.updates.conftest import kiosk, releases  # noqa: F401 - fixtures
from tests.updates.probe import Service


@pytest.fixture
def app(kiosk, broker, tmp_path):  # noqa: F811 - the kiosk fixture imported above
    """The probe app of the ``kiosk`` fixture's release, on the broker (what the updater restarts)."""
    s = Service(kiosk, broker.port, tmp_path / "health")
    s.start()
    yield s
    s.stop()


def start_instance(broker, url: str, tmp_path: Path, name: str, key_dir: Path, *,
                   base_url: str = "") -> tuple[Controller, rollout_job.RolloutJob]:
    """Controller instance ``name`` on the PostgreSQL database ``url`` (data folder ``ctl-<name>``,
    the fleet's signing key in ``key_dir``), started and subscribed, with its roll-out job (not
    started). The caller stops the controller."""
    cfg = controller_config(broker, tmp_path / f"ctl-{name}", database=url, instance=name)
    c = Controller(cfg, signing_key=key_dir / signing.KEY_FILE)
    c.start()
    assert c.wait_listening(10)
    return c, rollout_job.for_controller(c, base_url=base_url, interval=0.2)
