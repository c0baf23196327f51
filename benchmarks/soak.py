"""The soak: the real system on this machine under overlapping faults, with invariants checked.

    .venv/bin/python benchmarks/soak.py --kiosks 20 --duration 600 --speed 10 --seed 7 --out soak-report

Runs Mosquitto, the controller with its console (``kiosk-controller``, a process of its own), one
real Kivy kiosk under Xvfb driven through resident journeys (``benchmarks/soak_resident.py``;
``--no-kivy`` leaves it out) and ``--kiosks`` headless kiosks: ``--device-kiosks`` of them (all by
default) ``kiosk-agent --simulated``, each a process with its simulated printer and supervisor
board, the rest link-only agents ``--pack`` to a process (``benchmarks/soak_pack.py``); every
kiosk's connection goes through its own link proxy (``tests/support/link_proxy.py``) and its data
folder is a small tmpfs (when the soak may mount one: root). ``--speed``
compresses time: telemetry every 30/speed s, keepalive 10/speed s (whole seconds, at least 5), faults and
commands at the same compressed pace. A fault injector driven by ``--seed`` (printed in the
report, so a run can be replayed) picks, at random moments (``--fault-every``, ``--kinds``): broker
restart, controller SIGKILL and restart, and per kiosk the faults of ``benchmarks/soak_faults.py``:
link cut, slow lossy link (300 ms, 5 %, 64 kbit/s), half-open link, kiosk SIGKILL, host power
cycle by the supervisor board, clock step, printer unplug, garbage on its line, paper low/out,
cover open, supervisor board reset, disk full. Commands (``set_mode`` and ``collect_diagnostics``) are queued
all along as an operator would (``kioskctl``'s action queue).

Invariants, each a named check in the report (``report.md`` with ``timeline.svg`` and
``resources.svg`` in ``--out``):

* ``events_exactly_once``: every kiosk's journal is empty at the end and, per boot, the stored
  event sequence numbers are 1..n without a gap (ids are the store's primary key, so none twice);
* ``alarms_follow_faults``: every alarm raised falls in a fault's window (its kiosk's, or a
  broker/controller fault's, up to 30 s after it ended), and is cleared (or acknowledged, as the
  soak does for a host power cycle) within 30 s of that fault's end;
* ``device_faults_alarmed``: paper low/out, cover open, a host power cycle and an unplugged or
  garbled printer (``device_unreachable``, its hold compressed by ``--speed``) raise their alarm;
* ``stays_online``: a kiosk on a slow link or with a device fault or a full disk stays online;
* ``offline_within_bound``: a cut, half-open link, clock step (with its cut), killed or
  power-cycled kiosk shows offline in the
  controller's store within 1.5 x keepalive + 1 s (+ the 0.25 s sampling step);
* ``online_within_30s``: back online within 30 s of the link's (or process's) return;
* ``commands_final``: every command reaches a final state, and every ``succeeded``
  ``collect_diagnostics`` names a boot of that kiosk the controller has seen;
* ``resident_journeys``: the Kivy kiosk's journeys end DONE (each session wiped, on screen and in
  the app's memory, the walk-away ended by the idle timeout);
* ``resident_data_in_memory``: once every session ended, no resident's name, ID number or phone
  is in the Kivy kiosk's memory (``benchmarks/soak_memory.py``);
* ``no_resident_data``: the residents' full ID numbers and names are in no file the soak's
  processes wrote (logs, controller database, broker persistence, kiosk journals);
* ``resources_flat``: resident memory and open files of the controller, the broker and two
  packs of link-only kiosks, first
  quarter versus last quarter of the run (growth reported; fails above 50 % memory or 20 fds).

A fault window overlapping a broker or controller fault is not judged for liveness (the
controller cannot see what happens while it is down); the report lists such skips.
Exit code 0 when every invariant holds.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import signal
import sqlite3
import subprocess
import sys
import threading
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from benchmarks.soak_checks import check_all  # noqa: E402
from benchmarks.soak_faults import (  # noqa: E402
    FULL_ONLY,
    GLOBAL_FAULTS,
    KIOSK_FAULTS,
    OFFLINE_FAULTS,
    Fault,
    mount_disk,
    run_kiosk_fault,
    scaled_rules,
    unmount_disk,
)
from benchmarks.soak_report import write_report  # noqa: E402
from benchmarks.soak_resident import KivyKiosk, no_resident_data  # noqa: E402
from controller.store import connect, enqueue_action  # noqa: E402
from tests.support import processes  # noqa: E402
from tests.support.broker import Mosquitto, free_port, wait_for_port  # noqa: E402
from tests.support.link_proxy import LinkProxy  # noqa: E402


class Proc:
    """One long-running process (with its children: a kiosk's printer simulator) that we may kill
    and start again; what it printed goes to a log file when it ends."""

    def __init__(self, name: str, argv: list[str], log: Path) -> None:
        self.name, self.argv, self.log = name, argv, log
        self.p: processes.Proc | None = None

    def start(self) -> None:
        self.p = processes.Proc(self.argv, stdin=False)

    def _ended(self) -> None:
        if self.p is not None:
            with open(self.log, "a", encoding="utf-8") as f:
                f.write("\n".join(self.p.stdout_lines + self.p.stderr_lines) + "\n")
            self.p = None

    def kill(self) -> None:
        """SIGKILL to the whole process group, as a power cut would end them."""
        if self.p and self.p.proc.poll() is None:
            os.killpg(self.p.proc.pid, signal.SIGKILL)
            self.p.proc.wait(10)
        self._ended()

    def stop(self) -> None:
        if self.p:
            self.p.stop()
        self._ended()

    @property
    def pid(self) -> int | None:
        return self.p.proc.pid if self.p and self.p.proc.poll() is None else None


def usage(pid: int | None) -> tuple[float, int] | None:
    """(resident MiB, open file descriptors) of a live process."""
    if pid is None:
        return None
    try:
        rss = next(int(line.split()[1]) for line in Path(f"/proc/{pid}/status").read_text().splitlines()
                   if line.startswith("VmRSS:"))
        return rss / 1024, len(os.listdir(f"/proc/{pid}/fd"))
    except (OSError, StopIteration, ValueError):
        return None


@dataclass
class Soak:
    out: Path
    kiosks: int
    duration: float
    speed: float
    seed: int
    kivy: bool = True
    fault_every: float | None = None
    kinds: tuple[str, ...] = KIOSK_FAULTS + GLOBAL_FAULTS
    device_kiosks: int | None = None  # kiosks with simulated devices, a process each (None: all)
    pack: int = 20  # link-only kiosks per process (benchmarks/soak_pack.py)
    rng: random.Random = field(init=False)
    faults: list[Fault] = field(default_factory=list)
    states: dict[str, list[tuple[float, str]]] = field(default_factory=dict)
    resources: dict[str, list[tuple[float, float, int, int]]] = field(default_factory=dict)
    commands: list[tuple[float, str, str, str]] = field(default_factory=list)  # (t, id, kiosk, name)

    disks: dict[str, bool] = field(default_factory=dict)  # kiosk id -> its data folder is a tmpfs

    def __post_init__(self) -> None:
        self.rng = random.Random(self.seed)
        # A 600 ms round trip and its retransmission timeouts do not compress with time: below 5 s
        # a keepalive would time out on the slow link for reasons a real 10 s one never meets
        # (benchmarks/rural_link.py measures that link at the real keepalive).
        self.keepalive = max(5, round(10 / self.speed))
        self.telemetry = 30.0 / self.speed
        self.bound = 1.5 * self.keepalive + 1.0
        self.quiet_until = self.duration - max(40.0, 4 * self.bound)  # the end belongs to recovery
        self.out.mkdir(parents=True, exist_ok=True)
        self.work = self.out / "run"
        self.ids = [f"SOAK-{i:03d}" for i in range(self.kiosks)]
        self.full = set(self.ids[:self.kiosks if self.device_kiosks is None else self.device_kiosks])
        self.t0 = time.monotonic()
        self.wall0 = time.time()  # the controller stamps alarms with wall-clock time
        self._stop = threading.Event()

    def now(self) -> float:
        return time.monotonic() - self.t0

    # -- the system ------------------------------------------------------------------------------
    def start(self) -> None:
        py = sys.executable
        self.broker = Mosquitto(self.work / "broker").start()
        ctl_dir = self.work / "controller"
        key = subprocess.run([py, "-m", "controller.cli", "--data-dir", str(ctl_dir), "--print-public-key"],
                             cwd=ROOT, capture_output=True, text=True, check=True).stdout.strip()
        self.console_port = free_port()
        self.ctl_dir = ctl_dir
        self.controller = Proc("controller", [
            py, "-m", "controller.cli", "--broker", self.broker.url, "--data-dir", str(ctl_dir),
            "--http", f"127.0.0.1:{self.console_port}", "--telemetry-period", str(self.telemetry),
            "--alarm-rules", str(scaled_rules(self.work / "alarm_rules.toml", self.speed)),
            "--log-level", "WARNING"], self.work / "controller.log")
        self.controller.start()
        wait_for_port("127.0.0.1", self.console_port, 60)
        self.ui = KivyKiosk(self, key, self.broker.port) if self.kivy else None
        if self.ui:
            self.ui.start()
        self.proxies: dict[str, LinkProxy] = {}
        self.procs: dict[str, Proc] = {}
        self.packs: list[Proc] = []
        packs: list[list[dict[str, str]]] = [[] for _ in range(-(-(self.kiosks - len(self.full)) // self.pack))]
        for i, kid in enumerate(self.ids):
            proxy = LinkProxy(self.broker.port, seed=self.seed * 1000 + i).start()
            self.proxies[kid] = proxy
            self.disks[kid] = mount_disk(self.work / kid)
            (self.work / kid / "dev").mkdir(parents=True, exist_ok=True)  # the stepped clock's file
            if kid not in self.full:
                packs[(i - len(self.full)) // self.pack].append(
                    {"kiosk_id": kid, "broker": f"mqtt://127.0.0.1:{proxy.port}", "data_dir": str(self.work / kid)})
                continue
            self.procs[kid] = Proc(kid, [
                py, "-m", "kiosk_ui.agent.cli", "--kiosk-id", kid, "--site", "soak",
                "--broker", f"mqtt://127.0.0.1:{proxy.port}", "--data-dir", str(self.work / kid), "--simulated",
                "--telemetry-interval", str(self.telemetry), "--keepalive", str(self.keepalive),
                "--controller-public-key", key, "--log-level", "WARNING"], self.work / f"{kid}.log")
            self.procs[kid].start()
        common = {"site": "soak", "telemetry_interval": self.telemetry, "keepalive": self.keepalive,
                  "controller_public_key": key, "log_level": "WARNING"}
        for n, kiosks in enumerate(packs):
            spec = self.work / f"pack-{n}.json"
            spec.write_text(json.dumps({"common": common, "kiosks": kiosks}), encoding="utf-8")
            self.packs.append(Proc(f"pack-{n}", [py, str(ROOT / "benchmarks" / "soak_pack.py"), str(spec)],
                                   self.work / f"pack-{n}.log"))
            self.packs[-1].start()

    def stop(self) -> None:
        for p in [*self.procs.values(), *self.packs]:
            p.stop()
        self.controller.stop()
        for proxy in self.proxies.values():
            proxy.stop()
        self.broker.stop()

    def unmount(self) -> None:
        for kid, mounted in self.disks.items():
            if mounted:
                unmount_disk(self.work / kid)

    def store(self) -> sqlite3.Connection | None:
        try:
            return connect(self.ctl_dir, readonly=True)
        except Exception:  # noqa: BLE001 - not there yet, or mid-restart
            return None

    # -- watching ------------------------------------------------------------------------------------
    def sample(self) -> None:
        while not self._stop.wait(0.25):
            t = self.now()
            conn = self.store()
            if conn is not None:
                try:
                    for kid, state in conn.execute("SELECT kiosk_id, state FROM kiosks"):
                        seen = self.states.setdefault(kid, [])
                        if not seen or seen[-1][1] != state:
                            seen.append((t, state))
                except sqlite3.Error:
                    pass
                finally:
                    conn.close()
            watched = [("controller", self.controller.pid), ("broker", self.broker.proc and self.broker.proc.pid),
                       *((p.name, p.pid) for p in self.packs[:2])]  # two packs stand for the rest
            for name, pid in watched:
                if pid is not None and (u := usage(pid)):
                    self.resources.setdefault(name, []).append((t, *u, pid))

    def command_loop(self) -> None:
        every = max(1.0, 60.0 / self.speed)
        rng = random.Random(self.seed + 1)  # its own stream: the fault schedule replays unchanged
        while not self._stop.wait(rng.uniform(0.5, 1.5) * every):
            if self.now() > self.quiet_until:
                return
            kid = rng.choice(self.ids)
            name, args = rng.choice([("collect_diagnostics", {}), ("set_mode", {"mode": "maintenance"}),
                                          ("set_mode", {"mode": "normal"})])
            cid = uuid.uuid4().hex
            try:
                conn = connect(self.ctl_dir)
                enqueue_action(conn, "soak", "command", {"id": cid, "kiosk_id": kid, "name": name, "args": args,
                                                        "ttl": 120.0, "timeout": 30.0}, time.time())
                conn.close()
                self.commands.append((self.now(), cid, kid, name))
            except sqlite3.Error:
                pass

    # -- faults ------------------------------------------------------------------------------------
    def ack_alarms(self, kid: str, rule: str, wait: float = 30.0) -> None:
        """Acknowledge ``kid``'s open ``rule`` alarms as an operator would (kioskctl ack), waiting up
        to ``wait`` s for one to be there: the event behind it may still be on its way."""
        deadline = time.monotonic() + wait
        while not self._stop.is_set():
            ids: list[int] = []
            try:
                conn = connect(self.ctl_dir)
                try:
                    ids = [r[0] for r in conn.execute("SELECT id FROM alarms WHERE kiosk_id = ? AND rule = ? AND "
                                                      "cleared_at IS NULL AND acked_at IS NULL", (kid, rule))]
                    for aid in ids:
                        enqueue_action(conn, "soak", "ack", {"alarm_id": aid, "note": "soak: fault ended"},
                                       time.time())
                finally:
                    conn.close()
            except sqlite3.Error:
                pass
            if ids or time.monotonic() > deadline:
                return
            self._stop.wait(0.5)  # polled, bounded by the deadline

    def _free(self, k: str) -> bool:
        """One fault per kiosk at a time, and 30 s to come back after one that took it offline,
        keep every window judgeable."""
        return not any(f.target == k and (not f.end or (f.kind in OFFLINE_FAULTS and self.now() - f.end < 30))
                       for f in self.faults)

    def inject(self) -> None:
        every = self.fault_every or max(2.0, 120.0 / self.speed)
        first = list(self.kinds)
        self.rng.shuffle(first)
        kiosk_kinds = tuple(k for k in self.kinds if k in KIOSK_FAULTS)
        global_kinds = tuple(k for k in self.kinds if k in GLOBAL_FAULTS)
        while not self._stop.wait(self.rng.uniform(0.5, 1.5) * every):
            if self.now() > self.quiet_until:
                return
            # Every kind once first (in a seeded order), so even a short run meets each of them.
            kind = first.pop() if first else self.rng.choice(kiosk_kinds * 2 + global_kinds)
            if kind in GLOBAL_FAULTS:
                hold = self.rng.uniform(1.5, 3) * self.bound
                threading.Thread(target=self._global, args=(kind, hold), daemon=True).start()
                continue
            # A device fault needs only long enough for the kiosk to report it and the alarm to rise.
            hold = self.rng.uniform(*((1.5, 3) if kind in OFFLINE_FAULTS or kind == "link_slow" else (0.6, 1.2)))
            hold *= self.bound
            free = [k for k in self.ids if self._free(k) and (kind not in FULL_ONLY or k in self.full)]
            if not free:
                if kind not in first:
                    first.append(kind)  # every kind still comes once
                continue
            f = Fault(kind, self.rng.choice(free), self.now())
            self.faults.append(f)
            threading.Thread(target=run_kiosk_fault, args=(self, f, hold), daemon=True).start()

    def _global(self, kind: str, hold: float) -> None:
        if any(f.kind in GLOBAL_FAULTS and not f.end for f in self.faults):
            return
        f = Fault(kind, kind.split("_")[0], self.now())
        self.faults.append(f)
        if kind == "broker_restart":
            self.broker.restart()
        else:
            self.controller.kill()
            time.sleep(hold)  # the outage the fault is about
            self.controller.start()
        f.end = self.now()

    # -- the run -----------------------------------------------------------------------------------
    def run(self) -> dict[str, Any]:
        try:
            return self._run()
        finally:
            self.unmount()  # also when the run failed: no tmpfs outlives the soak

    def _run(self) -> dict[str, Any]:
        self.start()
        threads = [threading.Thread(target=t, daemon=True) for t in (self.sample, self.command_loop, self.inject)]
        for t in threads:
            t.start()
        try:
            time.sleep(self.duration)  # the soak's length: everything happens in the threads
        finally:
            self._stop.set()
            for t in threads:
                t.join(self.duration)
        results = check_all(self)
        if self.ui:
            results["resident_journeys"], results["resident_data_in_memory"] = self.ui.result(timeout=240)
            self.ui.stop()
        results["no_resident_data"] = no_resident_data(self)
        self.stop()
        return results


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    p.add_argument("--kiosks", type=int, default=20, help="headless kiosks (20)")
    p.add_argument("--duration", type=float, default=600.0, help="real seconds (600)")
    p.add_argument("--speed", type=float, default=10.0, help="time compression (10)")
    p.add_argument("--seed", type=int, default=None, help="fault schedule seed (random, printed)")
    p.add_argument("--no-kivy", action="store_true", help="leave out the real Kivy kiosk under Xvfb")
    p.add_argument("--fault-every", type=float, default=None,
                   help="mean seconds between faults (120/speed, at least 2)")
    p.add_argument("--kinds", default=",".join(KIOSK_FAULTS + GLOBAL_FAULTS),
                   help="comma-separated fault kinds to inject (all: %(default)s)")
    p.add_argument("--device-kiosks", type=int, default=None,
                   help="how many of the kiosks have simulated devices, a process each (all); the others "
                        "are link-only agents, --pack to a process")
    p.add_argument("--pack", type=int, default=20, help="link-only kiosks per process (20)")
    p.add_argument("--out", type=Path, default=Path("soak-report"), help="report folder (soak-report)")
    args = p.parse_args(argv)
    kinds = tuple(k for k in args.kinds.split(",") if k)
    unknown = sorted(set(kinds) - set(KIOSK_FAULTS + GLOBAL_FAULTS))
    if unknown or not kinds:
        p.error(f"--kinds: unknown fault kind(s) {', '.join(unknown)}" if unknown else "--kinds: none given")
    seed = args.seed if args.seed is not None else random.SystemRandom().randrange(1 << 31)
    print(f"soak seed {seed}", flush=True)
    soak = Soak(args.out, args.kiosks, args.duration, args.speed, seed, kivy=not args.no_kivy,
                fault_every=args.fault_every, kinds=kinds, device_kiosks=args.device_kiosks, pack=args.pack)
    results = soak.run()
    write_report(soak, results)
    print(json.dumps({name: r["ok"] for name, r in results.items()}), flush=True)
    print(f"report {args.out / 'report.md'}", flush=True)
    return 0 if all(r["ok"] for r in results.values()) else 1


if __name__ == "__main__":
    sys.exit(main())
