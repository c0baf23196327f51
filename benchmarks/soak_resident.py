"""The soak's resident (benchmarks/soak.py): one real Kivy kiosk under Xvfb, driven through
resident journeys by ``tests/kiosk/harness.py`` (touches, its simulated ID reader, a resident who
walks away mid-session), and the privacy check over everything the soak leaves behind."""

from __future__ import annotations

import json
import os
import shlex
import sys
import threading
import time
from pathlib import Path
from typing import Any

from benchmarks.soak_checks import ONLINE_AGAIN
from benchmarks.soak_faults import GLOBAL_FAULTS
from benchmarks.soak_memory import scan
from hardware_sim.identities import fictitious
from tests.support import processes
from tests.support.xvfb import Xvfb

KIOSK = "SOAK-UI"
# What must never leave a session: each round's fictitious resident's full ID number and name.
# Each round's card is made from the soak's seed (hardware_sim/identities.py, ``seed-N``): data in
# no source file, so a search of the app's memory finds only what the app itself read.


def resident(seed: int, i: int) -> int:
    """The card seed of round ``i`` of the soak with ``seed``."""
    return seed * 1000 + i


def secrets(seed: int, rounds: int) -> dict[str, str]:
    out = {}
    for i in range(rounds):
        values = fictitious(resident(seed, i))["values"]
        out[f"round {i} id_number"], out[f"round {i} name"] = values["id_number"], values["name"]
    return out

# The fictitious phone number the feedback journey types for a call back (memory check only: the
# service backend keeps it, as it must, to call the resident back).
PHONE = "13700001234"


def _home() -> list:
    return [["press", "finish"], ["screen", "rating"], ["press", "skip"], ["screen", "done"], ["press", "home"],
            ["screen", "attract"], ["wiped"]]


def journey(seed: int, rounds: int) -> list:
    """``rounds`` times, each when the soak says ``go{i}`` on stdin (the app stays up all along):
    read the notices; identify with an ID card, then walk away: the idle timeout must end the
    session and wipe it (the harness's ``wiped`` step looks in the app's memory and on screen).
    Each round is a harness ``round``: a resident who finds the services unavailable (an outage
    greyed them out) checks the kiosk says so, goes away and does the round again once the kiosk
    sees its centre (tests/kiosk/harness_away.py). The app exits when the soak says ``end``."""
    steps: list = [["screen", "attract", 60]]
    for i in range(rounds):
        steps += [["sync", f"go{i}"], ["round", i], *_round(resident(seed, i))]
    # The soak says "end" only after its recovery checks: that can take longer than a sync's default wait.
    return steps + [["sync", "end", 3600]]


def _round(card: int) -> list:
    return [
        ["press", "start"], ["press", "service:notices"], ["press", "option:elderly"], ["text", "长者免费体检"],
        *_home(),
        ["press", "start"], ["press", "service:feedback"], ["press", "option:safety"], ["press", "option:parking"],
        ["press", "option:normal"], *[["press", f"pin:{c}"] for c in PHONE + "✓"], ["screen", "result"],
        *_home(),
        ["press", "start"], ["press", "service:volunteer"], ["screen", "identify"],
        ["sim", "id_reader", {"cmd": "place_card", "profile": f"seed-{card}"}], ["press", "confirm"],
        ["idle", 75], ["screen", "attract", 30], ["wiped"],
        ["sim", "id_reader", {"cmd": "remove_card"}],
    ]


def unavailable_rounds(soak: Any, lines: list[str]) -> tuple[int, list[str]]:
    """The rounds the harness found the services unavailable in (``UNAVAILABLE round key wall``),
    and a failure for each that no broker or controller outage explains: the kiosk may say its
    centre is unreachable only from an outage's start until ``ONLINE_AGAIN`` after its end."""
    away, failures = 0, []
    for line in lines:
        parts = line.split()
        if len(parts) != 4 or parts[0] != "UNAVAILABLE":
            continue
        away += 1
        t = float(parts[3]) - soak.wall0
        if not any(f.kind in GLOBAL_FAULTS and f.start - 1 <= t <= (f.end or soak.now()) + ONLINE_AGAIN
                   for f in soak.faults):
            failures.append(f"seed {soak.seed}, t={t:.1f} s: round {parts[1]} found the services unavailable "
                            f"({parts[2]}) with no broker or controller outage")
    return away, failures


SERVICE = Path(__file__).resolve().parents[1] / "deploy" / "systemd" / "kiosk.service"


def service_env() -> dict[str, str]:
    """The environment kiosk.service gives the app (its ``Environment=`` lines): the soak's kiosk
    runs as a deployed one does, its allocator settings included."""
    env = {}
    for line in SERVICE.read_text(encoding="utf-8").splitlines():
        if line.startswith("Environment="):
            for pair in shlex.split(line.partition("=")[2]):
                key, _, value = pair.partition("=")
                env[key] = value
    return env


class KivyKiosk:
    def __init__(self, soak: Any, public_key: str, broker_port: int) -> None:
        self.soak = soak
        self.dir = soak.work / KIOSK
        self.dir.mkdir(parents=True, exist_ok=True)
        self.config = self.dir / "kiosk.toml"
        self.config.write_text(
            f'kiosk_id = "{KIOSK}"\nbroker = "mqtt://127.0.0.1:{broker_port}"\ndata_dir = "{self.dir / "data"}"\n'
            f'simulated = true\ntelemetry_interval = {soak.telemetry}\nkeepalive = {soak.keepalive}\n'
            f'controller_public_key = "{public_key}"\nsite = "soak"\n', encoding="utf-8")
        self.script = self.dir / "journey.json"
        self.every = 20.0
        self.rounds = max(1, int(soak.quiet_until // self.every))
        self.sent = 0
        self.script.write_text(json.dumps(journey(soak.seed, self.rounds), ensure_ascii=False), encoding="utf-8")
        self.xvfb: Xvfb | None = None
        self.proc: processes.Proc | None = None

    def start(self) -> None:
        display = os.environ.get("DISPLAY")
        if not display:
            self.xvfb = Xvfb()
            display = self.xvfb.start()
        self.proc = processes.Proc(
            [sys.executable, "-m", "tests.kiosk.harness", "--script", str(self.script), "--data-dir",
             str(self.dir / "data"), "--config", str(self.config), "--artifacts", str(self.dir / "shots"),
             "--tag", "soak"], env={**service_env(), "DISPLAY": display}, stdin=True)
        threading.Thread(target=self._pace, daemon=True).start()

    def _say(self, line: str) -> None:
        assert self.proc is not None and self.proc.proc.stdin is not None
        try:
            self.proc.proc.stdin.write(line + "\n")
            self.proc.proc.stdin.flush()
        except (BrokenPipeError, ValueError):
            pass  # the harness ended (failed): result() reports it

    def _pace(self) -> None:
        """A resident arrives every ``every`` seconds while the soak runs."""
        while self.sent < self.rounds and not self.soak._stop.wait(0 if self.sent == 0 else self.every):
            self._say(f"go{self.sent}")
            self.sent += 1

    def result(self, timeout: float) -> tuple[dict[str, Any], dict[str, Any]]:
        """Wait for the journeys to end, look for the residents' data in the app's memory once
        every session has ended, then let it exit: (journeys, memory) results; the journeys are
        ``ok`` when the harness said DONE."""
        assert self.proc is not None
        while self.sent < self.rounds:  # rounds the soak had no time for run now, back to back
            self._say(f"go{self.sent}")
            self.sent += 1
        memory = self._memory(timeout)
        self._say("end")
        try:
            line = self.proc.wait_for(lambda s: s.startswith(("DONE", "FAIL")), timeout=timeout)
        except (TimeoutError, RuntimeError) as exc:
            line = f"FAIL {str(exc)[:300]}"
        steps = sum(1 for s in self.proc.stdout_lines if s.startswith("STEP"))
        failures = [] if line.startswith("DONE") else [f"seed {self.soak.seed}: resident journey: {line[:300]}"]
        away, more = unavailable_rounds(self.soak, self.proc.stdout_lines)
        return {"ok": not (failures or more), "failures": failures + more, "judged": steps,
                "notes": [f"{steps} steps of resident journeys, idle-timeout walk-away included",
                          f"{away} rounds met the services unavailable during an outage (shown in the "
                          "catalogue's words) and were done again later"]}, memory

    def _memory(self, timeout: float) -> dict[str, Any]:
        """The ``resident_data_in_memory`` check: with every session ended (the harness waits for
        "end"), the app process's memory holds none of the residents' data."""
        assert self.proc is not None
        try:
            self.proc.wait_for(lambda s: s == "WAIT end", timeout=timeout)
        except (TimeoutError, RuntimeError) as exc:
            return {"ok": False, "failures": [f"seed {self.soak.seed}: the journeys never ended: {str(exc)[:200]}"],
                    "judged": 0, "notes": []}
        secret = secrets(self.soak.seed, self.rounds)
        got = scan(self.proc.proc.pid, {**secret, "phone": PHONE})
        failures = [f"seed {self.soak.seed}: the resident's {what} is in the kiosk app's memory after the "
                    f"session ended ({', '.join(where[:5])})" for what, where in sorted(got["found"].items())]
        return {"ok": not failures, "failures": failures, "judged": len(secret) + 1,
                "notes": [f"{got['bytes'] // (1024 * 1024)} MiB of the app's memory scanned for name, ID number, "
                          "phone (UTF-8, UTF-16, UTF-32, GB18030)"]}

    def stop(self) -> None:
        if self.proc is not None:
            self.proc.stop()
            (self.dir / "harness.log").write_text("\n".join(self.proc.stdout_lines + self.proc.stderr_lines),
                                                  encoding="utf-8")
        if self.xvfb is not None:
            self.xvfb.stop()


def no_resident_data(soak: Any) -> dict[str, Any]:
    """No full ID number or name in any file the soak's processes wrote: logs, the controller's
    database, the broker's persistence, the kiosks' journals and data folders."""
    needles = {k: v.encode("utf-8") for k, v in secrets(soak.seed, soak.ui.rounds if soak.ui else 0).items()}
    failures, files = [], 0
    deadline = time.monotonic() + 30
    for path in sorted(Path(soak.work).rglob("*")):
        if not path.is_file() or path.name == "journey.json" or path.suffix == ".png":
            continue  # the script names the profile; screenshots are the harness's own artefacts
        if time.monotonic() > deadline:
            failures.append("scan did not finish within 30 s")
            break
        files += 1
        try:
            data = path.read_bytes()
        except OSError:
            continue
        for what, needle in needles.items():
            if needle in data:
                failures.append(f"seed {soak.seed}: the resident's {what} is in {path.relative_to(soak.work)}")
    return {"ok": not failures, "failures": failures, "judged": files, "notes": [f"{files} files scanned"]}
