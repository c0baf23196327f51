"""Several link-only kiosk agents in one process, for the soak at fleet size (benchmarks/soak.py).

    python benchmarks/soak_pack.py SPEC.json

A headless kiosk with its simulated printer and supervisor board is three processes and about
2.5 % of a core at speed 10; two hundred of them do not fit a 2-core machine. The soak therefore
runs a few such full kiosks (the targets of device, kill and power-cycle faults) and packs the
rest here: each is the real agent runtime (``build_headless_kiosk``: birth and will, telemetry,
the event journal, signed commands, desired config) with no devices, its own data folder, its
own broker URL (its link proxy) and its own steppable wall clock (kiosk_ui/agent/stepped_clock.py),
so link faults, clock steps and a full disk reach one kiosk of the pack and not the others.

SPEC: ``{"common": {kiosk config fields}, "kiosks": [{"kiosk_id", "broker", "data_dir"}, ...]}``.
Prints ``READY n`` once every kiosk's agent has started, runs until SIGTERM, then stops them all.
"""

from __future__ import annotations

import json
import signal
import sys
import threading
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from foundation.logs import setup_logging  # noqa: E402
from foundation.settings import KioskConfig, from_mapping  # noqa: E402
from kiosk_ui.agent.stepped_clock import OFFSET_FILE, SteppedClock  # noqa: E402
from kiosk_ui.compose import build_headless_kiosk  # noqa: E402


def main(argv: list[str]) -> int:
    spec = json.loads(Path(argv[0]).read_text(encoding="utf-8"))
    setup_logging(spec["common"].get("log_level", "WARNING"))
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    signal.signal(signal.SIGINT, lambda *_: stop.set())
    kiosks = []
    try:
        for k in spec["kiosks"]:
            fields = {**{f: v for f, v in spec["common"].items() if f != "log_level"}, **k}
            config = from_mapping(KioskConfig, fields)
            clock = SteppedClock(config.data_dir / "dev" / OFFSET_FILE)
            kiosk, runtime = build_headless_kiosk(config, clock=clock)
            kiosks.append(kiosk)
            runtime.start()
        print(f"READY {len(kiosks)}", flush=True)
        while not stop.wait(0.5):
            pass
    finally:
        for kiosk in kiosks:
            kiosk.close()
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
