"""Host watchdog: power-cycles a Pi that stopped sending heartbeats, within a rate limit.

Timeline without heartbeats: WARN_MS -> "warning" event; CYCLE_MS -> host relay off for
OFF_MS, then on, and the silence clock restarts at power-on. At most MAX_CYCLES power cycles in
any WINDOW_MS; when another would be needed the board leaves the power on and reports
"unrecoverable" until a heartbeat returns. A maintenance hold (with an expiry) suspends all of
this; any heartbeat or hold command proves the host alive.

The power cycles of the window are kept in the board's flash (HISTORY, through the HAL's file
layer), so a board that resets does not start the hourly limit afresh. The board has no clock
that survives a reset: each entry is ``[boot, ms]``, the boot counter and the ms since that
boot started. An entry of this boot ages with this boot's uptime; one of an earlier boot is at
least this boot's uptime old and may be no older, so it counts until this boot has run
WINDOW_MS. The file is written once per power cycle, before the relay switches.
"""

import json

WARN_MS = 120000
CYCLE_MS = 180000
OFF_MS = 10000
MAX_CYCLES = 3
WINDOW_MS = 3600000
MAX_HOLD_S = 4 * 3600
HISTORY = "hostwatch.json"

OK = "ok"
WARNING = "warning"
POWER_CYCLE = "power_cycle"
UNRECOVERABLE = "unrecoverable"


class HostWatchdog:
    """``fs`` (hal.files) keeps the power-cycle history across board resets; None keeps it in
    RAM only. ``boot`` is this boot's number (the boot counter). ``faults`` counts a history
    file that could not be read or written."""

    def __init__(self, relays, emit, now: int, relay: str = "host", fs=None, boot: int = 0) -> None:
        self._relays = relays
        self._emit = emit
        self._relay = relay
        self._fs = fs
        self.boot = boot
        self.started = now
        self.state = OK
        self.last_beat = now
        self.hold_until = -1
        self.faults = 0
        self.cycles = []  # [boot, ms since that boot started] of recent power cycles, oldest first
        if fs is not None:
            self._load(fs)

    def _load(self, fs) -> None:
        try:
            size = fs.size(HISTORY)
            if size < 0:
                return  # no power cycle yet on this board's flash: no history, nothing wrong
            # Three entries take under 100 bytes; a longer file is not one this code wrote.
            if size > 256:
                raise ValueError
            cycles = json.loads(fs.read(HISTORY, 0, size))
            for c in cycles:  # TypeError unless a list
                if len(c) != 2 or c[0] < 0 or c[1] < 0:  # TypeError unless numbers
                    raise ValueError
            self.cycles = cycles[-MAX_CYCLES:]
        except Exception:
            # Unreadable flash or a damaged file: start without history rather than not at all.
            self.faults += 1

    def _save(self) -> None:
        fs = self._fs
        if fs is None:
            return  # history in RAM only
        tmp = HISTORY + ".tmp"
        try:
            fs.write(tmp, 0, json.dumps(self.cycles).encode())
            # One atomic step on littlefs: a reset leaves the old history or the new one.
            fs.rename(tmp, HISTORY)
        except OSError:
            self.faults += 1  # a worn or full flash must not stop the power cycle

    def heartbeat(self, now: int) -> None:
        if self.state == POWER_CYCLE:
            # Power is already off; finish the cycle so the relay is not left in doubt.
            return
        self.last_beat = now
        if self.state != OK:
            self._emit("watchdog", {"action": "host_ok", "was": self.state})
            self.state = OK

    def hold(self, now: int, seconds: int) -> int:
        """Set (seconds > 0) or clear (0) the maintenance hold; returns seconds left."""
        self.heartbeat(now)
        if seconds <= 0:
            if self.hold_until >= 0:
                self._emit("watchdog", {"action": "hold_cleared"})
            self.hold_until = -1
            return 0
        self.hold_until = now + seconds * 1000
        self._emit("watchdog", {"action": "hold", "seconds": seconds})
        return seconds

    def hold_left_s(self, now: int) -> int:
        if self.hold_until < 0:
            return 0
        return max(0, (self.hold_until - now + 999) // 1000)

    def tick(self, now: int) -> None:
        if self.hold_until >= 0:
            if now < self.hold_until:
                return
            # The silence clock restarts at expiry: the host gets a full grace period after an
            # update window, instead of being power-cycled the moment the hold ends.
            self.last_beat = max(self.last_beat, self.hold_until)
            self.hold_until = -1
            self._emit("watchdog", {"action": "hold_expired"})
        if self.state == POWER_CYCLE:
            if not self._relays.is_off(self._relay):
                self.state = OK
                self.last_beat = now
                self._emit("watchdog", {"action": "power_on"})
            return
        silent = now - self.last_beat
        if self.state == OK and silent >= WARN_MS:
            self.state = WARNING
            self._emit("watchdog", {"action": "warning", "silent_s": silent // 1000})
        if self.state == WARNING and silent >= CYCLE_MS:
            self._power_cycle(now, silent)

    def _power_cycle(self, now: int, silent: int) -> None:
        up = now - self.started
        recent = []
        for c in self.cycles:
            # An earlier boot's entry ages only with this boot's uptime. An entry that claims
            # this boot but a later time (the boot counter was reset) counts for longer: both
            # err towards leaving the power on.
            if (up - c[1] if c[0] == self.boot else up) < WINDOW_MS:
                recent.append(c)
        self.cycles = recent
        if len(recent) >= MAX_CYCLES:
            self.state = UNRECOVERABLE
            self._emit("watchdog", {"action": "unrecoverable", "cycles": len(recent)})
            return
        recent.append([self.boot, up])
        # Before the relay switches: if cutting the Pi's power browns the board out, this
        # power cycle has been counted all the same.
        self._save()
        self.state = POWER_CYCLE
        self._emit("watchdog", {"action": "power_off", "silent_s": silent // 1000, "cycle": len(recent)})
        self._relays.pulse(self._relay, OFF_MS, now, True)
