"""Host watchdog: power-cycles a Pi that stopped sending heartbeats, within a rate limit.

Timeline without heartbeats: WARN_MS -> "warning" event; CYCLE_MS -> host relay off for
OFF_MS, then on, and the silence clock restarts at power-on. At most MAX_CYCLES power cycles in
any WINDOW_MS; when another would be needed the board leaves the power on and reports
"unrecoverable" until a heartbeat returns. A maintenance hold (with an expiry) suspends all of
this; any heartbeat or hold command proves the host alive.
"""

WARN_MS = 120000
CYCLE_MS = 180000
OFF_MS = 10000
MAX_CYCLES = 3
WINDOW_MS = 3600000
MAX_HOLD_S = 4 * 3600

OK = "ok"
WARNING = "warning"
POWER_CYCLE = "power_cycle"
UNRECOVERABLE = "unrecoverable"


class HostWatchdog:
    def __init__(self, relays, emit, now: int, relay: str = "host") -> None:
        self._relays = relays
        self._emit = emit
        self._relay = relay
        self.state = OK
        self.last_beat = now
        self.hold_until = -1
        self.cycles = []  # power-off times within the rate-limit window

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
        recent = []
        for t in self.cycles:
            if now - t < WINDOW_MS:
                recent.append(t)
        self.cycles = recent
        if len(recent) >= MAX_CYCLES:
            self.state = UNRECOVERABLE
            self._emit("watchdog", {"action": "unrecoverable", "cycles": len(recent)})
            return
        self.cycles.append(now)
        self.state = POWER_CYCLE
        self._emit("watchdog", {"action": "power_off", "silent_s": silent // 1000, "cycle": len(self.cycles)})
        self._relays.pulse(self._relay, OFF_MS, now, True)
