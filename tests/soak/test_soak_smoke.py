"""The soak's smoke version: the real system (Mosquitto, the controller with its console, a real
Kivy kiosk under Xvfb walked through resident journeys, four headless kiosks with simulated
printers and supervisor boards, each behind its link proxy, each on its own small disk) for two
and a half minutes at speed 10 under every fault kind the injector has (a fault every ~4 s, device
faults held a shorter time than link faults); every named invariant must hold and the report must
say so with the seed."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from benchmarks.soak_faults import GLOBAL_FAULTS, KIOSK_FAULTS

ROOT = Path(__file__).resolve().parents[2]
CHECKS = ("events_exactly_once", "alarms_follow_faults", "device_faults_alarmed", "offline_within_bound",
          "online_within_30s", "stays_online", "commands_final", "resources_flat", "resident_journeys",
          "resident_data_in_memory", "no_resident_data")


def test_a_compressed_soak_keeps_every_invariant(tmp_path):
    out = tmp_path / "report"
    run = subprocess.run([sys.executable, "benchmarks/soak.py", "--kiosks", "4", "--duration", "150",
                          "--speed", "10", "--fault-every", "4", "--seed", "17", "--out", str(out)],
                         cwd=ROOT, capture_output=True, text=True, timeout=420)
    report = (out / "report.md").read_text(encoding="utf-8")
    assert run.returncode == 0, report + run.stdout[-2000:] + run.stderr[-2000:]
    assert "soak seed 17" in run.stdout and "Seed **17**" in report
    for name in CHECKS:
        assert f"| `{name}` | PASS |" in report
    for kind in KIOSK_FAULTS + GLOBAL_FAULTS:
        assert f"| {kind} |" in report, f"the injector never made {kind}"
    assert "not injected" not in report and "not seen" not in report, report
    assert (out / "timeline.svg").read_text().startswith("<svg") and (out / "resources.svg").exists()
    assert (out / "latency.svg").read_text().count("<circle") >= 2  # commands came to a final state
