"""Fixtures for the scale-out tests: kiosk agents on the real broker, controllers as real processes."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from foundation.backoff import Backoff
from foundation.settings import KioskConfig, from_mapping
from kiosk_ui.agent.agent import KioskAgent
from tests.fleet.conftest import make_controller, raw  # noqa: F401 - fixtures shared with tests/fleet


@pytest.fixture
def make_agent(broker, tmp_path) -> Iterator:
    """``make_agent(kiosk_id, **agent_kwargs)``: a started kiosk agent (no devices, no UI)."""
    made: list[KioskAgent] = []

    def make(kiosk_id: str, **kwargs) -> KioskAgent:
        cfg = from_mapping(KioskConfig, {"kiosk_id": kiosk_id, "broker": broker.url, "keepalive": 2,
                                         "data_dir": str(Path(tmp_path) / f"kiosk-{kiosk_id}")})
        kwargs.setdefault("backoff", Backoff(base=0.2, cap=2.0))
        agent = KioskAgent(cfg, **kwargs)
        agent.start(wait=10)
        made.append(agent)
        return agent

    yield make
    for agent in made:
        agent.stop()
