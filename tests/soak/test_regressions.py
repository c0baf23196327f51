"""Regression tests for what the soak (benchmarks/soak.py) found."""

from __future__ import annotations

from foundation.settings import KioskConfig, from_mapping
from kiosk_ui.agent.agent import KioskAgent


def test_a_kiosk_waits_less_than_30_s_between_reconnect_attempts(tmp_path):
    # Soak seed 3: a kiosk whose link came back while it waited out a 30-s backoff was online again
    # only after the 30-s bound. The longest wait now leaves room for the connect itself.
    agent = KioskAgent(from_mapping(KioskConfig, {"kiosk_id": "K-BACKOFF", "broker": "mqtt://127.0.0.1:1",
                                                  "data_dir": str(tmp_path)}))
    try:
        agent.backoff.rand = lambda: 1.0  # the unluckiest draw every time
        waits = [agent.backoff.next_delay() for _ in range(20)]
    finally:
        agent.journal.close()
    assert max(waits) <= 25.0 and waits[-1] == max(waits)
