"""Resident journeys: ``python benchmarks/resident_journeys.py`` (under xvfb-run when there is no display).

Drives each of the 8 reference services through the real app like a resident (the UI test harness's
touches), from the attract screen to the result, in normal and in elderly mode (switched on with the
top bar's button, which counts as a touch), against the device simulators (the printer paced at
115200 baud), a private Mosquitto and the real controller. For each journey: the touches (cards and
QR codes presented are counted apart), the seconds from the first touch to the result on screen,
and, where the result is printed, to the end of printing. The harness touches a button on its
second look (about 0.1 s per touch): the seconds are the app's and the devices' time, not a
resident's reading time. Prints one JSON object; the figures go into docs/benchmarks.md.
"""

from __future__ import annotations

import argparse
import json
import sqlite3
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))  # run as a script from anywhere: the project and its test support

from hardware_sim.identities import PROFILES  # noqa: E402
from kiosk_ui.i18n import tr  # noqa: E402

MASKED = PROFILES["resident-1"]["values"]["name"][0] + "*"
CARD = ["sim", "id_reader", {"cmd": "place_card", "profile": "resident-1"}]
SS_CARD = ["sim", "card_reader", {"cmd": "place_card", "kind": "social_security"}]
PRINTED = ["text", tr("print.done")]

# service -> (steps from the first touch to the result on screen, steps on to the end of printing or [])
JOURNEYS: dict[str, tuple[list, list]] = {
    "queue_ticket": ([["press", "service:queue_ticket"], ["press", "option:general"], ["screen", "result"]],
                     [["press", "print"], PRINTED]),
    "appointment": ([["press", "service:appointment"], ["screen", "identify"], CARD, ["text", MASKED],
                     ["press", "confirm"], ["press", "option:centre"], ["press_prefix", "option:20"],
                     ["screen", "result"]], [["press", "print"], PRINTED]),
    "certificate": ([["press", "service:certificate"], ["screen", "identify"], CARD, ["text", MASKED],
                     ["press", "confirm"], ["press", "option:residence"], ["screen", "result", 60]], [PRINTED]),
    "certificate_check": ([["press", "service:certificate_check"], ["screen", "identify"],
                           ["sim", "scanner", {"cmd": "scan", "data": "$SYNC"}], ["screen", "result"]], []),
    "social_security": ([["press", "service:social_security"], ["screen", "identify"], SS_CARD,
                         ["screen", "card_pin"], *[["press", f"pin:{c}"] for c in "123456✓"],
                         ["text", MASKED], ["press", "confirm"], ["screen", "result"]], []),
    "volunteer": ([["press", "service:volunteer"], ["screen", "identify"], CARD, ["text", MASKED],
                   ["press", "confirm"], ["press", "option:check_in"], ["screen", "result"]], []),
    "notices": ([["press", "service:notices"], ["press", "option:elderly"], ["screen", "result"]], []),
    "feedback": ([["press", "service:feedback"], ["press", "option:safety"], ["press", "option:parking"],
                  ["press", "option:normal"], ["press", "skip"], ["screen", "result"]], [["press", "print"], PRINTED]),
}
TAKE = {"id_reader": ["sim", "id_reader", {"cmd": "remove_card"}],
        "card_reader": ["sim", "card_reader", {"cmd": "remove_card"}]}


def journey(service: str, elderly: bool) -> list:
    to_result, to_print = JOURNEYS[service]
    tag = f"{service}:{'elderly' if elderly else 'normal'}"
    steps = [["screen", "attract"], ["mark"]]
    steps += [["press", "elderly"]] if elderly else []
    if service == "certificate_check":
        steps = [["sync", "cert"], *steps]
    steps += [["press", "start"], *to_result, ["elapsed", f"{tag}:result"]]
    if to_print:
        steps += [*to_print, ["elapsed", f"{tag}:printed"]]
    steps += [["press", "finish"], ["screen", "rating"], ["press", "skip"], ["screen", "done"], ["press", "home"],
              ["screen", "attract"]]
    if elderly:  # another resident: the first has booked that slot and checked in already
        steps = json.loads(json.dumps(steps).replace('"resident-1"', '"resident-2"'))
    used = {s[1] for s in to_result if s[0] == "sim" and s[1] in TAKE}
    return steps + [TAKE[port] for port in sorted(used)] + [["cleared", port] for port in sorted(used)]


def touches(steps: list) -> dict[str, int]:
    presses = sum(1 for s in steps if s[0] in ("press", "press_prefix"))
    presented = sum(1 for s in steps if s[0] == "sim")
    return {"touches": presses, "cards_or_codes": presented}


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__)
    p.parse_args()
    from controller.server import Controller
    from foundation.settings import ControllerConfig, from_mapping
    from tests.support.broker import Mosquitto

    steps, counts = [["screen", "attract"]], {}
    for elderly in (False, True):
        for service in JOURNEYS:
            part = journey(service, elderly)
            to_result, to_print = JOURNEYS[service]
            first = [["press", "elderly"]] if elderly else []
            counts[f"{service}:{'elderly' if elderly else 'normal'}"] = {
                "to_result": touches([*first, ["press", "start"], *to_result]),
                "to_printed": touches([*first, ["press", "start"], *to_result, *to_print]) if to_print else None}
            steps += part
    out: dict = {}
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        broker = Mosquitto(tmp / "broker").start()
        controller = Controller(from_mapping(ControllerConfig, {"broker": broker.url, "data_dir": str(tmp / "ctl")}))
        controller.start()
        try:
            script = tmp / "script.json"
            script.write_text(json.dumps(steps, ensure_ascii=False), encoding="utf-8")
            proc = subprocess.Popen(
                [sys.executable, "-m", "tests.kiosk.harness", "--script", str(script), "--data-dir",
                 str(tmp / "kiosk"), "--simulated", "--broker", broker.url, "--artifacts", str(tmp / "art")],
                stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, stdin=subprocess.PIPE, text=True, cwd=REPO)
            stdin, stdout = proc.stdin, proc.stdout
            if stdin is None or stdout is None:
                proc.kill()
                raise RuntimeError("the kiosk harness process has no stdin or stdout pipe")
            lines: list[str] = []

            def answer_syncs() -> None:
                # The certificate check scans the code of the certificate printed just before.
                db = tmp / "ctl" / "controller.sqlite3"
                code = sqlite3.connect(db).execute("SELECT code FROM svc_certificates ORDER BY rowid DESC").fetchone()[0]
                stdin.write(f"cert KIOSK-CERT:{code}\n")
                stdin.flush()

            answered = False
            for line in stdout:
                lines.append(line.strip())
                if line.startswith("WAIT cert") and not answered:
                    answered = True  # the harness keeps the line: later journeys scan that code again
                    threading.Thread(target=answer_syncs, daemon=True).start()
            proc.wait(60)
        finally:
            controller.stop()
            broker.stop()
    if not lines or not lines[-1].startswith("DONE"):
        raise SystemExit(f"harness failed: {lines[-3:]}")
    seconds = {ln.split()[1]: float(ln.split()[2]) for ln in lines if ln.startswith("ELAPSED")}
    for key, c in counts.items():
        out[key] = {**c, "seconds_to_result": seconds[f"{key}:result"],
                    "seconds_to_printed": seconds.get(f"{key}:printed")}
    out["slowest_s"] = max(seconds.values())
    print(json.dumps(out, indent=1))
    return 0


if __name__ == "__main__":
    started = time.monotonic()
    code = main()
    print(f"# {time.monotonic() - started:.0f} s", file=sys.stderr)
    sys.exit(code)
