"""Simulated supervisor board: the real firmware core (firmware.core) on the host HAL.

``python -m hardware_sim supervisor --link PATH`` serves it on a pseudo-terminal. The board's
clock is virtual: it follows real time (times ``time_scale``) plus whatever the ``advance``
control command adds, so a test can skip the 180 s of heartbeat silence and watch the power
cycle happen. Every relay switch and every event the firmware emits is printed on stdout as a
JSON line (``{"note": "relay", ...}``, ``{"note": "event", ...}``).

Control commands (JSON lines on stdin), besides the common unplug/replug/garble/mute:
``door`` {"open": bool}, ``tamper`` {"active": bool}, ``presence`` {}, ``temperature``
{"c": float, "rh": float}, ``sensor`` {"stuck": "bus"|"ff"|""}, ``advance`` {"seconds": n},
``time_scale`` {"factor": x}, ``relays`` {} (the relay log), ``status`` {}, ``reboot``
{"cause": "watchdog"|"soft"|"power_on"}, ``files`` {} (what is in the board's flash). The boot
event note carries ``set``: the firmware set main.py would boot (firmware/bootsel.py; "" for
the files at the root of the flash), counted and fallen back exactly as on the board.

The board's flash (what ``kiosk-provision flash-firmware`` writes over the link) is the folder
``OUT/flash`` with ``--out OUT``, so a test or a technician can look at it or damage it; without
``--out`` it is kept in memory. It survives simulated reboots, and so does what the firmware
keeps there itself: the host watchdog's power-cycle history (``hostwatch.json``), so after a
``reboot`` the hourly power-cycle limit still holds. The simulator keeps running the firmware
core of this source tree: the files flashed are stored and verified, not executed.

``--protocol 1`` (``SupervisorSim(protocol=1)``) simulates a board still on firmware 1.1.0 as
the host sees it: link protocol 1 only (protocol 2 frames are dropped as ``version`` faults),
``fw`` "1.1.0" in ``hello`` and the boot event, the same commands but no binary file transfer
(``file_open``/``file_data`` are ``unknown_type``, as on every board before 1.4.0, and so are
``file_check``, as before 1.5.1, and ``set_switch``, as before 1.5.2; it takes base64
``file_write``, which the current firmware refuses). Once its flash has changed
(a flash-firmware run) it boots the current firmware, protocol 2, at the next reset or reboot.
"""

from __future__ import annotations

import logging
import random
from pathlib import Path
from typing import Any

from firmware import bootsel
from firmware import link as L
from firmware.core.files import sha256_of
from firmware.core.hostwatch import HostWatchdog
from firmware.core.relays import CommandError
from firmware.core.supervisor import Supervisor
from firmware.hal.fs import DirFs
from firmware.hal.host import HostHal, MemoryFs, MemoryStore
from hardware_sim.pty_device import SimControlError, SimDevice

log = logging.getLogger(__name__)

STEP_MS = 50          # virtual tick while advancing: finer than any debounce/measure period
MAX_ADVANCE_S = 24 * 3600
PRESENCE_HOLD_MS = 1000
LEGACY_FIRMWARE = "1.1.0"  # the last firmware that speaks only link protocol 1


class LegacyBoard(Supervisor):
    """The current core as firmware 1.1.0 looked on the wire: protocol 1 only, version 1.1.0.

    1.1.0 had the same commands and events; what differs for the host is the frame (no length
    field) and the versions it reports, which is what this reproduces; and its host watchdog kept
    the power-cycle history in RAM, so a reset started the hourly limit afresh.
    """

    def __init__(self, hal, now: int) -> None:
        super().__init__(hal, now)
        # The boot event queued so far is encoded when sent, so it too goes out as protocol 1.
        self.link.decoder.versions = L.V1
        self.link.version = L.PROTO_V1
        # 1.1.0 kept its power-cycle history in RAM only: nothing of it in the flash.
        self.watchdog = HostWatchdog(self.relays, self.emit, now)

    def emit(self, ev: str, fields: dict) -> None:
        if ev == "boot":
            fields["fw"] = LEGACY_FIRMWARE
        super().emit(ev, fields)

    def hello(self, now: int) -> dict:
        reply = super().hello(now)
        reply["fw"] = LEGACY_FIRMWARE
        return reply

    def _command(self, mtype: int, body, now: int):
        if mtype in (L.FILE_OPEN, L.FILE_DATA, L.FILE_CHECK, 0x0F):
            # binary file transfer came with 1.4.0, file_check with 1.5.1, set_switch with 1.5.2
            raise CommandError("unknown_type")
        if mtype == L.FILE_WRITE:
            # Its only file transfer, which the current firmware refuses (since 1.5.2): the
            # reference commands (core/files.py) write the part file as 1.1.0 did.
            from firmware.core.files import command

            return command(self, mtype, body)
        return super()._command(mtype, body, now)


class SupervisorSim(SimDevice):
    name = "supervisor"

    def __init__(self, out_dir: Path | None = None, *, board: str = "sim-0001",
                 protocol: int = L.PROTO_VERSION) -> None:
        super().__init__(out_dir)
        if protocol not in (L.PROTO_V1, L.PROTO_VERSION):
            raise ValueError(f"protocol must be {L.PROTO_V1} (firmware {LEGACY_FIRMWARE}) or {L.PROTO_VERSION}, "
                             f"not {protocol!r}")
        self.board = board
        self.protocol = protocol
        self.store = MemoryStore()  # the board's flash survives a simulated reboot
        self.files: DirFs | MemoryFs
        if out_dir is not None:
            (Path(out_dir) / "flash").mkdir(parents=True, exist_ok=True)
            self.files = DirFs(str(Path(out_dir) / "flash"))
        else:
            self.files = MemoryFs()
        self.time_scale = 1.0
        self._real0: float | None = None
        self._offset_ms = 0
        self._last_ms = 0
        self._out = bytearray()
        self._notes: list[dict[str, Any]] = []
        self._presence_until = -1
        self._logged = 0
        # Like the board's os.urandom: a rebooted board must not reuse its old sequence numbers.
        self._rng = random.Random()
        # What the flash held when the board started: a protocol-1 board runs firmware 1.1.0
        # for as long as that is still what it holds.
        self._flash0 = self._flash_files() if protocol == L.PROTO_V1 else None
        self._boot(0, "power_on")

    # -- clock ----------------------------------------------------------------------------------
    def _target_ms(self, now: float) -> int:
        """The virtual time for real time ``now`` (the board has run up to ``_last_ms``)."""
        if self._real0 is None:
            self._real0 = now
        ms = int((now - self._real0) * 1000 * self.time_scale) + self._offset_ms
        return max(self._last_ms, ms)

    def _clock(self) -> int:
        return self._last_ms

    # -- the board ------------------------------------------------------------------------------
    def _boot(self, now_ms: int, cause: str) -> None:
        old = getattr(self, "hal", None)
        self.hal = HostHal(self._clock, store=self.store, cause=cause, board=self.board,
                           seq0=self._rng.randrange(1, 256), files=self.files)
        if old is not None:
            # Enclosure conditions are physical: they survive the board's reset.
            self.hal.sht3x = self.hal.i2c = old.sht3x
            for pin in ("door", "tamper", "presence"):
                setattr(self.hal, pin, getattr(old, pin))
            self.hal.relay_log = old.relay_log
            for name, relay in self.hal.relays.items():
                relay._log = old.relay_log
                # A relay that was off comes back on when the board resets (pins default to
                # "powered"); carrying the level over makes that switch show up in the log.
                relay.level = old.relays[name].level
        # What main.py does first on the board: count a boot of a staged set on trial, fall back
        # to the last good set past the limit (the sim runs this tree's core whatever it picks).
        self.boot_set = bootsel.choose(self.files)
        legacy = self.protocol == L.PROTO_V1 and self._flash_files() == self._flash0
        self.core = (LegacyBoard if legacy else Supervisor)(self.hal, now_ms)
        self.core.listener = self._on_event
        self._logged = len(self.hal.relay_log)
        hello = self.core.hello(now_ms)
        self._notes.append({"note": "event", "ev": "boot", "reset": cause, "boots": self.core.guard.boots,
                            "safe": self.core.safe, "fw": hello["fw"], "proto": hello["proto"], "t_ms": now_ms,
                            "set": self.boot_set})

    def _on_event(self, ev: str, fields: dict) -> None:
        note = {"note": "event", "t_ms": self._last_ms}
        note.update(fields)
        self._notes.append(note)

    def _step(self, now_ms: int) -> None:
        if self.core.service_s:
            # The board would drop to its REPL and reset after the service time; the simulator
            # reports it and carries on, so a flashing flow can be exercised end to end.
            self._notes.append({"note": "service", "seconds": self.core.service_s, "t_ms": now_ms})
            self.core.service_s = 0
        if self._presence_until >= 0 and now_ms >= self._presence_until:
            self.hal.presence.value(0)
            self._presence_until = -1
        self._out += self.core.tick(now_ms)
        if self.core.reset_requested:
            # The reset command's reply is in _out already; the board restarts right after it.
            self._notes.append({"note": "reset", "t_ms": now_ms})
            self._boot(now_ms, "soft")
        log_ = self.hal.relay_log
        while self._logged < len(log_):
            t, name, on = log_[self._logged]
            self._logged += 1
            self._notes.append({"note": "relay", "relay": name, "on": on, "t_ms": t})

    def _run_to(self, target_ms: int) -> None:
        t = self._last_ms
        while t < target_ms:
            t = min(target_ms, t + STEP_MS)
            self._last_ms = t
            self._step(t)

    # -- SimDevice hooks ------------------------------------------------------------------------
    def on_bytes(self, data: bytes, now: float) -> bytes:
        self._run_to(self._target_ms(now))
        self.core.receive(data, self._last_ms)
        self._step(self._last_ms)
        return self._take()

    def tick(self, now: float) -> bytes:
        self._run_to(self._target_ms(now))
        self._step(self._last_ms)
        return self._take()

    def next_wakeup(self, now: float) -> float:
        return 0.01

    def drain_notes(self) -> list[dict[str, Any]]:
        notes, self._notes = self._notes, []
        return notes

    def _take(self) -> bytes:
        out = bytes(self._out)
        self._out.clear()
        return out

    def _flash_files(self) -> dict[str, dict[str, Any]]:
        """Name, size and SHA-256 of everything in the board's flash."""
        fs = self.files
        if isinstance(fs, DirFs):
            root = Path(fs.root)
            names = sorted(str(p.relative_to(root)) for p in root.rglob("*") if p.is_file())
        else:
            names = sorted(fs.files)
        return {n: {"size": fs.size(n), "sha256": sha256_of(fs, n)} for n in names}

    # -- control --------------------------------------------------------------------------------
    def control(self, cmd: dict[str, Any], now: float) -> dict[str, Any] | None:
        name = cmd["cmd"]
        self._run_to(self._target_ms(now))
        ms = self._last_ms
        if name == "door":
            self.hal.door.value(1 if _flag(cmd, "open") else 0)
            return {"open": bool(self.hal.door.value())}
        if name == "tamper":
            self.hal.tamper.value(1 if _flag(cmd, "active") else 0)
            return {"active": bool(self.hal.tamper.value())}
        if name == "presence":
            self.hal.presence.value(1)
            self._presence_until = ms + PRESENCE_HOLD_MS
            return {}
        if name == "temperature":
            c = float(cmd.get("c", self.hal.sht3x.celsius))
            rh = float(cmd.get("rh", self.hal.sht3x.rh))
            if not (-40 <= c <= 125 and 0 <= rh <= 100):
                raise SimControlError("temperature out of the SHT3x range (-40..125 C, 0..100 %RH)")
            self.hal.sht3x.celsius, self.hal.sht3x.rh = c, rh
            return {"c": c, "rh": rh}
        if name == "sensor":
            stuck = cmd.get("stuck", "")
            if stuck not in ("", "bus", "ff"):
                raise SimControlError('stuck must be "", "bus" or "ff"')
            self.hal.sht3x.stuck = stuck
            return {"stuck": stuck}
        if name == "advance":
            seconds = float(cmd.get("seconds", 0))
            if not 0 <= seconds <= MAX_ADVANCE_S:
                raise SimControlError(f"seconds must be between 0 and {MAX_ADVANCE_S}")
            self._offset_ms += int(seconds * 1000)
            self._run_to(self._target_ms(now))
            return {"t_ms": self._last_ms}
        if name == "time_scale":
            factor = float(cmd.get("factor", 1.0))
            if not 0 < factor <= 1000:
                raise SimControlError("factor must be in (0, 1000]")
            # Re-anchor so the virtual clock continues from where it is.
            self._offset_ms = self._last_ms
            self._real0 = now
            self.time_scale = factor
            return {"factor": factor}
        if name == "relays":
            return {"log": [{"t_ms": t, "relay": r, "on": on} for t, r, on in self.hal.relay_log],
                    "state": self.core.relays.states()}
        if name == "status":
            return {"t_ms": ms, "status": self.core.status(ms), "hello": self.core.hello(ms)}
        if name == "files":
            return {"files": self._flash_files()}
        if name == "reboot":
            cause = cmd.get("cause", "soft")
            if cause not in ("soft", "watchdog", "power_on"):
                raise SimControlError('cause must be "soft", "watchdog" or "power_on"')
            self._boot(ms, cause)
            return {"reset": cause, "boots": self.core.guard.boots, "safe": self.core.safe}
        return super().control(cmd, now)


def _flag(cmd: dict[str, Any], key: str) -> bool:
    value = cmd.get(key, True)
    if not isinstance(value, bool):
        raise SimControlError(f"{key} must be true or false")
    return value
