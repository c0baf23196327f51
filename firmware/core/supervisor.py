"""The supervisor application: wires the link to the state machines.

``Supervisor(hal, now)`` boots (core/boot.py: boot counter, safe mode decision, ``boot`` event);
then the caller loops: ``receive(bytes_from_host, now)``, ``tick(now)`` -> bytes to write, and
feeds its hardware watchdog only while ``healthy(now)``. The same class runs on the board
(firmware/main.py) and in the simulator (hardware_sim/supervisor.py).

Only what runs all the time stays in the board's heap: the boot sequence, the rare commands
(core/commands.py) and the file transfer (core/fileopen.py, fileinfo.py, upload.py, files.py) are
loaded when needed and dropped again (core.forget; docs/benchmarks.md, "Supervisor firmware").
"""

from firmware import link as L
from firmware.core import forget
from firmware.core.beacon import Beacon
from firmware.core.bootguard import BootGuard
from firmware.core.enclosure import Enclosure
from firmware.core.hostwatch import HostWatchdog
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
    # Set by core/boot.py (annotations only: MicroPython stores nothing for them).
    started: int
    guard: BootGuard
    safe: bool
    reset_cause: str
    link: L.Link
    relays: RelayBank
    watchdog: HostWatchdog
    last_tick: int
    # Until the boot or a command sets them: class attributes, nothing per instance until then.
    enclosure: "Enclosure | None" = None  # None in safe mode
    beacon: "Beacon | None" = None
    faults = 0
    fault_streak = 0
    # Seconds of service mode the host asked for; main.py leaves the loop for the REPL.
    service_s = 0
    # Set by the reset command once its reply is queued; main.py (or the simulator) resets
    # after that reply has gone out.
    reset_requested = False
    # File transfer (core/upload.py) is loaded for a file command and dropped once no file is
    # open: its bytecode would otherwise sit in the heap of every board all the time. Between
    # file_open and the first chunk, the part file's name (core/paths.py).
    upload = None
    files_at = 0
    # A staged firmware set on trial becomes the good one once this boot ran stably.
    set_confirmed = False

    def __init__(self, hal, now: int) -> None:
        self.hal = hal
        # The simulator sets this to report every event it sees; the board leaves it a no-op.
        # (Set here: a function of core/boot.py kept by the supervisor would keep that module.)
        self.listener = _no_listener
        from firmware.core.boot import start

        try:
            start(self, now)
        finally:
            forget("boot")  # runs once: its code leaves the heap

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
        # Between reads nothing of the last frame stays in the heap (its payload is a view).
        self.link.decoder.release()

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
        # 15: set_switch (1.5.2); file_write (an old host's base64 chunk) is refused since 1.5.2:
        # it goes to core/commands.py, unknown_type (docs/benchmarks.md)
        if L.FILE_INFO <= mtype <= 15 and mtype != L.RESET and mtype != L.FILE_WRITE:
            self.files_at = now
            up = self.upload
            if isinstance(up, str) and (mtype == L.FILE_DATA or mtype == L.FILE_COMMIT):
                # file_open left the part file's name: the Upload (and its code) comes with the
                # first chunk, or the commit of an empty file, not in file_open's heap.
                from firmware.core.upload import Upload

                up = self.upload = Upload(self.hal.files, up)
            if mtype == L.FILE_DATA and up:
                return up.data(body)  # a chunk: the open upload alone, nothing loaded
            if mtype == L.FILE_COMMIT and up:
                return up.commit(self, mtype, body)  # its hash is streamed: nothing loaded
            if mtype == L.FILE_OPEN or mtype == 15:
                # the path rules and the folders alone; set_switch through it: a module of its
                # own named here would intern a name at boot (docs/benchmarks.md)
                from firmware.core.fileopen import command
            elif mtype == L.FILE_INFO:
                from firmware.core.fileinfo import command  # the path rules and the hashing alone
            elif mtype == L.FILE_CHECK:
                from firmware.core.setcheck import command  # one entry of a staged set, hashed
            else:
                from firmware.core.files import command

            return command(self, mtype, body)
        # Every other command is rare: its code is loaded for it and dropped again.
        try:
            from firmware.core.commands import command

            return command(self, mtype, body, now)
        finally:
            forget("commands")

    def hello(self, now: int) -> dict:
        from firmware.core.commands import hello

        return hello(self, now)

    def status(self, now: int) -> dict:
        from firmware.core.commands import status

        return status(self, now)
