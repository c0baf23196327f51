"""The soak's smoke version: the real system (Mosquitto, the controller with its console, a real
Kivy kiosk under Xvfb walked through resident journeys, three headless kiosks with simulated printers, each behind its link proxy) for two and a half minutes
at speed 10 under every fault kind the injector has; every named invariant must hold and the
report must say so with the seed."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
CHECKS = ("events_exactly_once", "alarms_follow_faults", "offline_within_bound", "online_within_30s", "slow_link_stays_online",
          "commands_final", "resources_flat", "resident_journeys", "no_resident_data")
KINDS = ("link_cut", "link_slow", "half_open", "kiosk_kill", "broker_restart", "controller_kill")


def test_a_compressed_soak_keeps_every_invariant(tmp_path):
    out = tmp_path / "report"
    run = subprocess.run([sys.executable, "benchmarks/soak.py", "--kiosks", "3", "--duration", "150",
                          "--speed", "10", "--seed", "17", "--out", str(out)],
                         cwd=ROOT, capture_output=True, text=True, timeout=420)
    report = (out / "report.md").read_text(encoding="utf-8")
    assert run.returncode == 0, report + run.stdout[-2000:] + run.stderr[-2000:]
    assert "soak seed 17" in run.stdout and "Seed **17**" in report
    for name in CHECKS:
        assert f"| `{name}` | PASS |" in report
    for kind in KINDS:
        assert f"| {kind} |" in report, f"the injector never made {kind}"
    assert (out / "timeline.svg").read_text().startswith("<svg") and (out / "resources.svg").exists()
