"""Status beacon: one LED (or lamp relay) blinking a pattern per kiosk state.

A pattern is a tuple of durations in ms, alternating on/off, starting on; it repeats. The
value at ``now`` is computed from the time since the pattern was set, so no timer drifts.
"""

PATTERNS = {
    "ready": (1000,),                     # steady on
    "busy": (500, 500),                   # 1 Hz blink
    "degraded": (150, 150, 150, 1050),    # double flash
    "out_of_service": (125, 125),         # fast 4 Hz blink
    "off": (),
}


class Beacon:
    def __init__(self, pin, now: int, pattern: str = "busy") -> None:
        self._pin = pin
        self._level = -1
        self.pattern = ""
        self._steps = ()
        self._period = 0
        self._since = now
        self.set(pattern, now)

    def set(self, pattern: str, now: int) -> bool:
        steps = PATTERNS.get(pattern)
        if steps is None:
            return False
        self.pattern = pattern
        self._steps = steps
        self._period = sum(steps)
        self._since = now
        self.tick(now)
        return True

    def level(self, now: int) -> int:
        steps = self._steps
        if not steps:
            return 0
        if len(steps) == 1:
            return 1
        t = (now - self._since) % self._period
        on = 1
        for d in steps:
            if t < d:
                return on
            t -= d
            on ^= 1
        return 0

    def tick(self, now: int) -> None:
        level = self.level(now)
        if level != self._level:
            self._level = level
            self._pin.value(level)
