"""The soak's kiosk faults (benchmarks/soak.py): what each does to one kiosk, and how it ends.

Link faults go through the kiosk's link proxy (tests/support/link_proxy.py); device faults through
the kiosk's simulators' control sockets (``DATA_DIR/dev/<simulator>.ctl``, hardware_sim); the
kiosk's disk is a small tmpfs the soak mounts at its data folder, which a disk-full fault fills
with a file until the kernel answers ENOSPC; a clock step writes the offset the simulated
kiosk's wall clock reads (kiosk_ui/agent/stepped_clock.py).

Each fault function runs on its own thread: it starts the fault, holds it ``hold`` seconds (the
outage the fault is about) and ends it, noting on the :class:`Fault` what happened.
"""

from __future__ import annotations

import contextlib
import errno
import os
import re
import sqlite3
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from controller.alarms import RULES_FILE
from controller.store import DB_NAME
from foundation.errors import TransportError
from hardware_sim.control_socket import send
from kiosk_ui.agent.stepped_clock import OFFSET_FILE
from tests.support.link_proxy import Shape

SLOW = Shape(latency=0.3, loss=0.05, bandwidth_bps=64_000)
# Faults that take the kiosk off the fleet link for a while (judged: offline within the bound,
# online again within 30 s of the return).
OFFLINE_FAULTS = ("link_cut", "half_open", "kiosk_kill", "host_power_cycle", "clock_step")
# Faults the kiosk must ride out online.
ONLINE_FAULTS = ("link_slow", "printer_unplug", "printer_garble", "paper_low", "paper_out", "cover_open",
                 "supervisor_reset", "disk_full")
DEVICE_FAULTS = ONLINE_FAULTS[1:]
KIOSK_FAULTS = OFFLINE_FAULTS + ONLINE_FAULTS
# Faults that need the kiosk's own process and simulated devices (not a link-only packed kiosk).
FULL_ONLY = ("kiosk_kill", "host_power_cycle") + tuple(k for k in DEVICE_FAULTS if k != "disk_full")
GLOBAL_FAULTS = ("broker_restart", "controller_kill")
# The alarm each device fault must raise while it lasts (kiosk_offline for the offline faults is
# judged by the liveness checks instead).
EXPECTED_ALARM = {"paper_low": "paper_low", "paper_out": "paper_out", "cover_open": "cover_open",
                  "host_power_cycle": "host_power_cycled", "printer_unplug": "device_unreachable",
                  "printer_garble": "device_unreachable"}
DISK_BYTES = 8 * 1024 * 1024  # each kiosk's tmpfs: room for its journal, receipts and sockets
CLOCK_STEP_S = 3600.0


def scaled_rules(path: Path, speed: float) -> Path:
    """The packaged alarm rules with each rule's hold (``for``) compressed like the soak's time,
    written to ``path`` (for the controller's ``--alarm-rules``)."""
    text = RULES_FILE.read_text(encoding="utf-8")
    text = re.sub(r"^for = ([0-9.]+)$", lambda m: f"for = {float(m[1]) / speed:g}", text, flags=re.M)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")
    return path


@dataclass
class Fault:
    kind: str
    target: str  # kiosk id, or "broker" / "controller"
    start: float  # seconds since the soak began
    end: float = 0.0
    back: float = 0.0  # when the link (or the process) returned, for faults that last beyond it
    note: str = ""


# -- the kiosk's disk ------------------------------------------------------------------------------
def mount_disk(path: Path, size: int = DISK_BYTES) -> bool:
    """Mount a small tmpfs at ``path`` (the kiosk's data folder); False where mounting is not
    allowed (not root): the disk_full fault is then left out and the report says so."""
    path.mkdir(parents=True, exist_ok=True)
    run = subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size},mode=0700", "soak-kiosk", str(path)],
                         capture_output=True, text=True, check=False)
    return run.returncode == 0


def unmount_disk(path: Path) -> None:
    subprocess.run(["umount", "-l", str(path)], capture_output=True, check=False)


def fill_disk(path: Path) -> int:
    """Write ``path`` until the filesystem says ENOSPC; the bytes written."""
    chunk = b"\0" * (256 * 1024)
    written = 0
    with open(path, "wb", buffering=0) as f:
        while True:
            try:
                written += f.write(chunk)
            except OSError as exc:
                if exc.errno != errno.ENOSPC:
                    raise
                # The last partial block: fill to the byte, so the kiosk's next page write fails.
                with contextlib.suppress(OSError):
                    while True:
                        written += f.write(b"\0" * 512)
                return written


# -- one fault on one kiosk ------------------------------------------------------------------------
SIM_WAIT = 30.0  # a kiosk that was just (re)started may not have its simulators up yet


def _sim(soak: Any, kid: str, sim: str, cmd: dict[str, Any], wait: float = SIM_WAIT) -> dict[str, Any]:
    """Send one control command to a kiosk's simulator, waiting up to ``wait`` s for its socket."""
    path = soak.work / kid / "dev" / f"{sim}.ctl"
    deadline = time.monotonic() + wait
    while True:
        try:
            return send(path, cmd)
        except TransportError as exc:
            if time.monotonic() > deadline:
                return {"ok": False, "error": str(exc)}
        time.sleep(0.5)  # polled, bounded by the deadline


def _seen_event(soak: Any, kid: str, etype: str, since_wall: float, timeout: float) -> bool:
    """The kiosk journaled (or the controller stored) an event of ``etype`` after ``since_wall``."""
    deadline = time.monotonic() + timeout
    journal = soak.work / kid / "agent-journal.sqlite3"
    while time.monotonic() < deadline:
        for db, sql, args in ((journal, "SELECT COUNT(*) FROM outbox WHERE payload LIKE ?", (f'%"{etype}"%',)),
                              (soak.ctl_dir / DB_NAME,
                               "SELECT COUNT(*) FROM events WHERE kiosk_id = ? AND type = ? AND received_at >= ?",
                               (kid, etype, since_wall))):
            try:
                conn = sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=2)
                try:
                    if conn.execute(sql, args).fetchone()[0]:
                        return True
                finally:
                    conn.close()
            except sqlite3.Error:
                pass
        time.sleep(0.2)  # polled, bounded by the deadline
    return False


def run_kiosk_fault(soak: Any, f: Fault, hold: float) -> None:
    kid, proxy = f.target, soak.proxies[f.target]
    if f.kind == "link_cut":
        proxy.cut()
        time.sleep(hold)  # the outage
        proxy.restore()
    elif f.kind == "link_slow":
        proxy.set_shape(SLOW)
        time.sleep(hold)
        proxy.set_shape(Shape())
    elif f.kind == "half_open":
        proxy.half_open()
    elif f.kind == "kiosk_kill":
        soak.procs[kid].kill()
        time.sleep(hold)
        soak.procs[kid].start()
    elif f.kind == "host_power_cycle":
        # The agent stops feeding the board's watchdog (the host hangs): the board's virtual clock
        # skips the heartbeat silence, it cuts the host's power, and tells the host at power-on;
        # here the event reaches the agent before the power goes (the board sim lives in the
        # kiosk's process group), then the whole host dies and boots again after ``hold``.
        reply = _sim(soak, kid, "supervisor", {"cmd": "advance", "seconds": 181})
        f.start, wall = soak.now(), time.time()
        seen = reply.get("ok") and _seen_event(soak, kid, "host_power_cycled", wall - 1, 10.0)
        f.note = "board cut the host's power" if seen else f"board's power cycle not seen: {reply}"
        soak.procs[kid].kill()
        time.sleep(hold)
        soak.procs[kid].start()
    elif f.kind == "clock_step":
        # NTP steps a clock right after the network returns: the step, then a short cut.
        # Back first (a birth stamped before the last one the controller saw), then either way.
        earlier = any(g.kind == "clock_step" and g is not f for g in soak.faults)
        step = soak.rng.choice((-CLOCK_STEP_S, CLOCK_STEP_S)) if earlier else -CLOCK_STEP_S
        _write_offset(soak, kid, step)
        proxy.cut()
        time.sleep(min(hold, 1.2 * soak.bound))
        proxy.restore()
        f.back = soak.now()
        f.note = f"wall clock {step:+.0f} s"
        time.sleep(max(0.0, hold - 1.2 * soak.bound))
        _write_offset(soak, kid, 0.0)
    else:
        _device_fault(soak, f, hold)
    f.end = soak.now()
    f.back = f.back or f.end
    if f.kind == "host_power_cycle":
        soak.ack_alarms(kid, "host_power_cycled")  # an operator confirms the board's power cycle


def _write_offset(soak: Any, kid: str, seconds: float) -> None:
    path = soak.work / kid / "dev" / OFFSET_FILE
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(f"{seconds}\n", encoding="ascii")
    os.replace(tmp, path)  # atomic: the kiosk never reads half a number


# (start command, end command) per device fault, on (simulator, JSON control line).
DEVICE_COMMANDS: dict[str, tuple[str, dict[str, Any], dict[str, Any]]] = {
    "printer_unplug": ("printer", {"cmd": "unplug"}, {"cmd": "replug"}),
    # Only garbage on the line: at a few garbled bytes in a hundred most status answers still read
    # well, and an intermittent fault is not one the held device_unreachable rule is about.
    "printer_garble": ("printer", {"cmd": "garble", "rate": 1.0}, {"cmd": "garble", "rate": 0.0}),
    "paper_low": ("printer", {"cmd": "paper", "state": "low"}, {"cmd": "paper", "state": "ok"}),
    "paper_out": ("printer", {"cmd": "paper", "state": "out"}, {"cmd": "paper", "state": "ok"}),
    "cover_open": ("printer", {"cmd": "cover", "open": True}, {"cmd": "cover", "open": False}),
}


def _device_fault(soak: Any, f: Fault, hold: float) -> None:
    kid = f.target
    if f.kind == "supervisor_reset":
        reply = _sim(soak, kid, "supervisor", {"cmd": "reboot", "cause": "soft"})
        f.start = soak.now()
        f.note = "board reset" if reply.get("ok") else f"reset refused: {reply.get('error')}"
        time.sleep(hold)  # what follows the reset (the driver's resync) is the fault's window
        return
    if f.kind == "disk_full":
        if not soak.disks.get(kid):
            f.note = "not injected: the kiosk's data folder is not a tmpfs (mounting needs root)"
            return
        filler = soak.work / kid / "soak-fill.bin"
        try:
            f.note = f"disk filled with {fill_disk(filler) // 1024} KiB until ENOSPC"
            # The kiosk must write while the disk is full: the printer's cover opens and shuts,
            # each a device_state event for the journal (and a cover_open alarm, raised and cleared).
            for open_ in (True, False, True, False):
                _sim(soak, kid, "printer", {"cmd": "cover", "open": open_})
                time.sleep(hold / 4)
        finally:
            filler.unlink(missing_ok=True)
        return
    sim, start, end = DEVICE_COMMANDS[f.kind]
    reply = _sim(soak, kid, sim, start)
    f.start = soak.now()  # the fault begins when the device takes it
    f.note = "" if reply.get("ok") else f"not injected: {reply.get('error')}"
    time.sleep(hold)
    # The end must reach the device even if the first try met a busy simulator.
    if not _sim(soak, kid, sim, end).get("ok"):
        f.note += " (end command not taken)"
