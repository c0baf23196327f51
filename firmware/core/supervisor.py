"""The supervisor application: wires the link to the state machines.

``Supervisor(hal, now)`` boots (boot counter, safe mode decision, ``boot`` event); then the
caller loops: ``receive(bytes_from_host, now)``, ``tick(now)`` -> bytes to write, and feeds its
hardware watchdog only while ``healthy(now)``. The same class runs on the board (firmware/main.py)
and in the simulator (hardware_sim/supervisor.py).
"""

from firmware import VERSION
from firmware import link as L
from firmware.core.beacon import Beacon
from firmware.core.bootguard import BootGuard
from firmware.core.enclosure import Enclosure
from firmware.core.hostwatch import MAX_HOLD_S, HostWatchdog
from firmware.core.relays import CommandError, RelayBank

# Consecutive loop passes with an unexpected exception before the loop counts as unhealthy
# and the hardware watchdog is left to reset the board.
FAULT_LIMIT = 5
# A file left open this long without a file command (the host went away mid-transfer) is
# dropped, and with it the file-transfer code.
FILE_IDLE_MS = 60000


def _no_listener(ev: str, fields: dict) -> None:
    pass


class Supervisor:
    def __init__(self, hal, now: int) -> None:
        self.hal = hal
        self.started = now
        self.guard = BootGuard(hal.store)
        self.safe = self.guard.begin()
        self.reset_cause = hal.reset_cause()
        # file_data payloads stay in the receive buffer: the chunk is written from there.
        self.link = L.Link(seq0=hal.rand_seq(), view=L.FILE_DATA)
        self.relays = RelayBank(hal.relays, self.emit)
        # The power-cycle history lives in flash beside the files, under this boot's number.
        self.watchdog = HostWatchdog(self.relays, self.emit, now, "host", hal.files, self.guard.boots)
        self.enclosure = None
        self.beacon = None
        if not self.safe:
            self.enclosure = Enclosure(hal, self.emit, now)
            self.beacon = Beacon(hal.beacon, now)
        self.faults = 0
        # Seconds of service mode the host asked for; main.py leaves the loop for the REPL.
        self.service_s = 0
        # Set by the reset command once its reply is queued; main.py (or the simulator) resets
        # after that reply has gone out.
        self.reset_requested = False
        # File transfer (core/upload.py) is loaded for a file command and dropped once no file
        # is open: its bytecode would otherwise sit in the heap of every board all the time.
        self.upload = None
        self.files_at = 0
        self.fault_streak = 0
        # A staged firmware set on trial becomes the good one once this boot ran stably.
        self.set_confirmed = False
        self.last_tick = now
        # The simulator sets this to report every event it sees; the board leaves it a no-op.
        self.listener = _no_listener
        self.emit("boot", {"reset": self.reset_cause, "boots": self.guard.boots, "safe": self.safe,
                           "fw": VERSION})

    def emit(self, ev: str, fields: dict) -> None:
        fields["ev"] = ev
        self.link.send(L.EVENT, fields)
        self.listener(ev, fields)

    def receive(self, data, now: int) -> None:
        for frame in self.link.receive(data, now):
            if frame.mtype & L.REPLY or frame.mtype == L.EVENT:
                continue  # the host does not send these; ignore rather than guess
            try:
                # file_data is binary (a view of the receive buffer), every other command JSON.
                body = frame.payload if frame.mtype == L.FILE_DATA else frame.body()
                reply = self._command(frame.mtype, body, now)
            except (L.LinkError, CommandError) as exc:
                reply = {"err": exc.reason}
            try:
                self.link.respond(frame, frame.mtype | L.REPLY, reply)
            except L.LinkError as exc:
                self.link.respond(frame, frame.mtype | L.REPLY, {"err": exc.reason})

    def tick(self, now: int) -> bytes:
        """Advance every state machine to ``now``; returns bytes for the host."""
        self.last_tick = now
        try:
            self.relays.tick(now)
            self.watchdog.tick(now)
            self.guard.tick(now - self.started)
            if self.guard.stable and not self.set_confirmed:
                self.set_confirmed = True
                if self.hal.files.size("fwset.json") > 0:  # a staged update happened: see bootsel
                    from firmware.bootsel import confirm_staged

                    confirm_staged(self)
            if self.enclosure is not None:
                self.enclosure.tick(now)
            if self.beacon is not None:
                self.beacon.tick(now)
            if self.upload is not None and now - self.files_at > FILE_IDLE_MS:
                self.upload = None
                from firmware.core.files import drop

                drop()
            self.fault_streak = 0
        except Exception:  # a component bug must not stop supervision
            self.faults += 1
            self.fault_streak += 1
        return self.link.poll(now)

    def healthy(self, now: int) -> bool:
        return self.fault_streak < FAULT_LIMIT and now - self.last_tick < 2000

    # -- commands -------------------------------------------------------------------------

    def _command(self, mtype: int, body, now: int):
        if mtype == L.HEARTBEAT:
            self.watchdog.heartbeat(now)
            return {"state": self.watchdog.state, "hold_s": self.watchdog.hold_left_s(now)}
        if mtype == L.HELLO:
            return self.hello(now)
        if mtype == L.RELAY:
            name = body.get("relay")
            off_s = body.get("off_s", 5)
            if not isinstance(name, str) or not isinstance(off_s, (int, float)) or off_s < 0:
                raise CommandError("bad_args")
            off_ms = self.relays.pulse(name, int(off_s * 1000), now)
            return {"relay": name, "off_ms": off_ms}
        if mtype == L.HOLD:
            seconds = body.get("seconds")
            if not isinstance(seconds, int) or seconds < 0 or seconds > MAX_HOLD_S:
                raise CommandError("bad_args")
            return {"hold_s": self.watchdog.hold(now, seconds)}
        if mtype == L.BEACON:
            if self.beacon is None:
                raise CommandError("safe_mode")
            pattern = body.get("pattern")
            if not isinstance(pattern, str) or not self.beacon.set(pattern, now):
                raise CommandError("unknown_pattern")
            return {"pattern": pattern}
        if mtype == L.STATUS:
            return self.status(now)
        if mtype == L.SERVICE:
            seconds = body.get("seconds", 600)
            if not isinstance(seconds, int) or not 10 <= seconds <= 3600:
                raise CommandError("bad_args")
            self.service_s = seconds
            return {"service_s": seconds}
        if L.FILE_INFO <= mtype <= L.FILE_DATA and mtype != L.RESET:
            self.files_at = now
            if mtype == L.FILE_DATA and self.upload:
                return self.upload.data(body)  # a chunk: the open upload alone, nothing loaded
            if mtype == L.FILE_COMMIT and self.upload:
                from firmware.core.commit import command  # its hash is streamed: no files.py
            elif mtype == L.FILE_OPEN or mtype == L.FILE_INFO:
                from firmware.core.paths import command  # the path rules, info and open alone
            else:
                from firmware.core.files import command

            return command(self, mtype, body)
        if mtype == L.RESET:
            self.reset_requested = True
            return {"reset": True}
        raise CommandError("unknown_type")

    def hello(self, now: int) -> dict:
        return {"fw": VERSION, "proto": self.link.version, "board": self.hal.board_id(),
                "reset": self.reset_cause, "boots": self.guard.boots, "safe": self.safe,
                "uptime_s": (now - self.started) // 1000}

    def status(self, now: int) -> dict:
        wd = self.watchdog
        st = {"host": wd.state, "hold_s": wd.hold_left_s(now),
              "relays": self.relays.states(), "safe": self.safe, "faults": self.faults + wd.faults,
              "link_errors": self.link.decoder.error_count(), "dropped": self.link.dropped}
        enc = self.enclosure
        if enc is not None:
            c = enc.celsius
            rh = enc.rh
            st["c"] = None if c is None else round(c, 1)
            st["rh"] = None if rh is None else round(rh, 1)
            st["sensor"] = enc.sensor_status
            st["door"] = "open" if enc.door.state else "closed"
            st["tamper"] = enc.tamper.state
            st["presence"] = enc.presence.state
            st["fan"] = enc.fan.duty
        if self.beacon is not None:
            st["beacon"] = self.beacon.pattern
        return st
