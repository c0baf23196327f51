"""Power relays: timed power cycles with a minimum off time, one owner per relay.

A relay HAL object is Pin-like: ``value(1)`` powers the load, ``value(0)`` cuts it (the HAL
hides the coil polarity). The bank only ever turns a relay off as part of a pulse, so a crash
mid-pulse leaves loads powered after the board resets (the pins default to "on").
"""

MIN_OFF_MS = 2000
MAX_OFF_MS = 600000


class CommandError(Exception):
    """A host command cannot be carried out; ``reason`` goes back in the reply."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


class RelayBank:
    def __init__(self, pins: dict, emit, protected=("host",), min_off_ms: int = MIN_OFF_MS) -> None:
        self._pins = pins
        self._emit = emit
        self._protected = protected
        self.min_off_ms = min_off_ms
        self._on_at = {}  # name -> ms at which the relay goes back on
        for pin in pins.values():
            pin.value(1)

    def is_off(self, name: str) -> bool:
        return name in self._on_at

    def states(self) -> dict:
        out = {}
        for name in self._pins:
            out[name] = "off" if name in self._on_at else "on"
        return out

    def pulse(self, name: str, off_ms: int, now: int, internal: bool = False) -> int:
        """Cut power to ``name`` for ``off_ms`` (at least min_off_ms); returns the off time used."""
        if name not in self._pins:
            raise CommandError("unknown_relay")
        if name in self._protected and not internal:
            # The host relay belongs to the host watchdog: the Pi must not cut its own power
            # by a stray command.
            raise CommandError("protected_relay")
        if name in self._on_at:
            raise CommandError("busy")
        if off_ms > MAX_OFF_MS:
            raise CommandError("off_too_long")
        if off_ms < self.min_off_ms:
            off_ms = self.min_off_ms
        self._pins[name].value(0)
        self._on_at[name] = now + off_ms
        self._emit("relay", {"relay": name, "state": "off", "off_ms": off_ms})
        return off_ms

    def tick(self, now: int) -> None:
        if not self._on_at:
            return
        for name in list(self._on_at):
            if now >= self._on_at[name]:
                del self._on_at[name]
                self._pins[name].value(1)
                self._emit("relay", {"relay": name, "state": "on"})
