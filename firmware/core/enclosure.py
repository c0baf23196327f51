"""Enclosure: SHT3x temperature/humidity, door and tamper switches, presence, fan control.

Everything is polled from the main loop with ``now`` in ms, nothing blocks: the SHT3x
measurement is started on one pass and read on a later one. A sensor fault is reported as a
status change ("failed" after FAIL_AFTER consecutive errors) and the loop goes on; the fan runs
at full speed while the temperature is unknown, because an overheating kiosk is worse than a
noisy one.
"""

SHT3X_ADDR = 0x44
CMD_MEASURE = b"\x24\x00"  # single shot, high repeatability, no clock stretching
MEASURE_MS = 20            # datasheet max 15.5 ms at high repeatability
PERIOD_MS = 5000
FAIL_AFTER = 3


class SensorError(Exception):
    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


def crc8(data) -> int:
    """Sensirion CRC-8 (poly 0x31, init 0xFF); crc8(b"\\xbe\\xef") == 0x92."""
    crc = 0xFF
    for byte in data:
        crc ^= byte
        for _ in range(8):
            crc = ((crc << 1) ^ 0x31) & 0xFF if crc & 0x80 else (crc << 1) & 0xFF
    return crc


def parse_sht3x(data) -> tuple:
    """Six measurement bytes -> (celsius, percent RH); raises SensorError on a bad CRC."""
    if len(data) != 6:
        raise SensorError("short_read")
    if crc8(data[0:2]) != data[2] or crc8(data[3:5]) != data[5]:
        raise SensorError("crc")
    raw_t = (data[0] << 8) | data[1]
    raw_h = (data[3] << 8) | data[4]
    return (-45 + 175 * raw_t / 65535, 100 * raw_h / 65535)


class Sht3x:
    """Non-blocking SHT3x reader on a machine.I2C-like bus (writeto/readfrom)."""

    def __init__(self, i2c, addr: int = SHT3X_ADDR) -> None:
        self._i2c = i2c
        self._addr = addr
        self._ready_at = -1

    def start(self, now: int) -> None:
        self._ready_at = -1
        try:
            self._i2c.writeto(self._addr, CMD_MEASURE)
        except OSError:
            raise SensorError("i2c")
        self._ready_at = now + MEASURE_MS

    def busy(self) -> bool:
        return self._ready_at >= 0

    def poll(self, now: int):
        """None while measuring, else (celsius, rh); raises SensorError."""
        if self._ready_at < 0 or now < self._ready_at:
            return None
        self._ready_at = -1
        try:
            data = self._i2c.readfrom(self._addr, 6)
        except OSError:
            raise SensorError("i2c")
        return parse_sht3x(data)


class Debounced:
    """A switch input accepted only after it held one level for ``stable_ms``."""

    def __init__(self, pin, now: int, stable_ms: int = 50) -> None:
        self._pin = pin
        self.stable_ms = stable_ms
        self.state = bool(pin.value())
        self._candidate = self.state
        self._since = now

    def update(self, now: int):
        """Returns the new state when it changes, else None."""
        level = bool(self._pin.value())
        if level != self._candidate:
            self._candidate = level
            self._since = now
            return None
        if level != self.state and now - self._since >= self.stable_ms:
            self.state = level
            return level
        return None


class Fan:
    """Fan PWM with hysteresis: on at ON_C, off below OFF_C, speed ramps to full at FULL_C."""

    ON_C = 40.0
    OFF_C = 35.0
    FULL_C = 50.0
    MIN_DUTY = 40  # percent; below this small fans stall

    def __init__(self, pwm) -> None:
        self._pwm = pwm
        self.running = False
        self.duty = 0
        self._set(0)

    def _set(self, percent: int) -> None:
        self.duty = percent
        self._pwm.duty_u16(percent * 65535 // 100)

    def update(self, celsius) -> None:
        if celsius is None:
            self.running = True
            self._set(100)
            return
        if self.running and celsius < self.OFF_C:
            self.running = False
        elif not self.running and celsius >= self.ON_C:
            self.running = True
        if not self.running:
            self._set(0)
            return
        span = (celsius - self.ON_C) / (self.FULL_C - self.ON_C)
        span = min(1.0, max(0.0, span))
        self._set(int(self.MIN_DUTY + (100 - self.MIN_DUTY) * span))


class Enclosure:
    def __init__(self, hal, emit, now: int) -> None:
        self._emit = emit
        self.sensor = Sht3x(hal.i2c) if hal.i2c is not None else None
        self.door = Debounced(hal.door, now)
        self.tamper = Debounced(hal.tamper, now)
        self.presence = Debounced(hal.presence, now, 20)
        self.fan = Fan(hal.fan)
        self.celsius = None
        self.rh = None
        self.sensor_status = "unknown" if self.sensor else "absent"
        self.sensor_error = ""
        self._fails = 0
        self._next_read = now
        self._reported = None  # (celsius, rh) last sent in an event
        self.fan.update(None)

    def tick(self, now: int) -> None:
        self._switches(now)
        if self.sensor is not None:
            self._measure(now)

    def _switches(self, now: int) -> None:
        v = self.door.update(now)
        if v is not None:
            self._emit("door", {"open": v})
        v = self.tamper.update(now)
        if v is not None:
            self._emit("tamper", {"active": v})
        v = self.presence.update(now)
        if v:
            # Only arrivals matter: they wake the screen.
            self._emit("presence", {})

    def _measure(self, now: int) -> None:
        sensor = self.sensor
        if sensor is None:
            return
        try:
            if not sensor.busy():
                if now >= self._next_read:
                    self._next_read = now + PERIOD_MS
                    sensor.start(now)
                return
            reading = sensor.poll(now)
        except SensorError as exc:
            self._failed(exc.reason)
            return
        if reading is None:
            return
        self._fails = 0
        self.celsius, self.rh = reading
        if self.sensor_status != "ok":
            self.sensor_status = "ok"
            self.sensor_error = ""
            self._emit("sensor", {"name": "sht3x", "status": "ok"})
        self.fan.update(self.celsius)
        last = self._reported
        if last is None or abs(last[0] - self.celsius) >= 0.5 or abs(last[1] - self.rh) >= 2:
            self._reported = reading
            self._emit("temperature", {"c": round(self.celsius, 1), "rh": round(self.rh, 1)})

    def _failed(self, reason: str) -> None:
        self._fails += 1
        self.sensor_error = reason
        if self._fails >= FAIL_AFTER and self.sensor_status != "failed":
            self.sensor_status = "failed"
            self.celsius = None
            self.rh = None
            self._reported = None
            self.fan.update(None)
            self._emit("sensor", {"name": "sht3x", "status": "failed", "error": reason})
