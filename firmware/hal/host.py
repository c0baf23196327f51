"""Host HAL: the board's hardware in pure Python, for CPython, tests and the simulator.

Also runs under MicroPython without hardware (the unix and WebAssembly ports). Relays record
every switch with the simulated time; the SHT3x sits on a fake I2C bus, answers with properly
CRC'd frames and can be made to stick; the boot record lives in memory.
"""

from firmware.core.enclosure import SHT3X_ADDR, crc8


class SimPin:
    def __init__(self, level: int = 0) -> None:
        self.level = level

    def value(self, v=None):
        if v is None:
            return self.level
        self.level = 1 if v else 0
        return None


class SimRelay:
    """A relay output that logs (ms, name, on) on every change."""

    def __init__(self, name: str, clock, log: list) -> None:
        self.name = name
        self._clock = clock
        self._log = log
        self.level = 1

    def value(self, v=None):
        if v is None:
            return self.level
        level = 1 if v else 0
        if level != self.level:
            self.level = level
            self._log.append((self._clock(), self.name, bool(level)))
        return None


class SimPWM:
    def __init__(self) -> None:
        self.duty = 0

    def duty_u16(self, v=None):
        if v is None:
            return self.duty
        self.duty = v
        return None


def sht3x_frame(celsius: float, rh: float) -> bytes:
    raw_t = int((celsius + 45) * 65535 / 175 + 0.5)
    raw_h = int(rh * 65535 / 100 + 0.5)
    raw_t = min(65535, max(0, raw_t))
    raw_h = min(65535, max(0, raw_h))
    t = bytes([raw_t >> 8, raw_t & 0xFF])
    h = bytes([raw_h >> 8, raw_h & 0xFF])
    return t + bytes([crc8(t)]) + h + bytes([crc8(h)])


class SimSht3x:
    """Fake I2C bus holding one SHT3x. ``stuck`` = "bus" (ETIMEDOUT), "ff" (SDA held high) or ""."""

    def __init__(self, celsius: float = 24.0, rh: float = 45.0) -> None:
        self.celsius = celsius
        self.rh = rh
        self.stuck = ""
        self._measuring = False
        self.reads = 0

    def writeto(self, addr: int, buf) -> int:
        if addr != SHT3X_ADDR or self.stuck == "bus":
            raise OSError(116)  # ETIMEDOUT, what machine.I2C raises on a held bus
        if bytes(buf) == b"\x24\x00":
            self._measuring = True
        return len(buf)

    def readfrom(self, addr: int, n: int) -> bytes:
        if addr != SHT3X_ADDR or self.stuck == "bus":
            raise OSError(116)
        if self.stuck == "ff":
            return b"\xff" * n
        if not self._measuring:
            raise OSError(5)  # NACK: no measurement pending
        self._measuring = False
        self.reads += 1
        return sht3x_frame(self.celsius, self.rh)[:n]


class MemoryStore:
    def __init__(self, record=None) -> None:
        self.record = record

    def load(self):
        return self.record

    def save(self, record: dict) -> None:
        self.record = dict(record)


class MemoryFs:
    """The board's flash in a dict (path -> bytes), same interface as hal/fs.DirFs.

    ``fail_after`` bytes of writes, when set, makes the next write raise OSError (a full or
    failing flash), so the core's handling of it can be tested.
    """

    def __init__(self, files=None) -> None:
        self.files = dict(files or {})
        self.fail_after = -1

    def size(self, rel: str) -> int:
        data = self.files.get(rel)
        return -1 if data is None else len(data)

    def open(self, rel: str):
        data = self.files.get(rel)
        if data is None:
            raise OSError(2)
        import io  # here: not a module every simulated board should load at boot

        return io.BytesIO(data)

    def read(self, rel: str, offset: int, n: int) -> bytes:
        data = self.files.get(rel)
        if data is None:
            raise OSError(2)
        return bytes(data[offset:offset + n])

    def write(self, rel: str, offset: int, data) -> int:
        if self.fail_after >= 0:
            if len(data) > self.fail_after:
                raise OSError(28)  # ENOSPC
            self.fail_after -= len(data)
        old = b"" if offset == 0 else self.files.get(rel, b"")
        self.files[rel] = bytes(old) + bytes(data)
        return len(self.files[rel])

    def rename(self, src: str, dst: str) -> None:
        if src not in self.files:
            raise OSError(2)
        self.files[dst] = self.files.pop(src)

    def remove(self, rel: str) -> None:
        self.files.pop(rel, None)

    def makedirs(self, rel_dir: str) -> None:
        pass


class SimWdt:
    def __init__(self, timeout_ms: int) -> None:
        self.timeout_ms = timeout_ms
        self.feeds = 0

    def feed(self) -> None:
        self.feeds += 1


class HostHal:
    """All simulated hardware of one board; ``clock`` returns the simulated ms."""

    RELAYS = ("host", "printer", "id_reader", "card_reader", "scanner")

    def __init__(self, clock, store=None, cause: str = "power_on", board: str = "sim-0001", seq0: int = 1,
                 files=None) -> None:
        self.relay_log = []
        self.relays = {}
        for name in self.RELAYS:
            self.relays[name] = SimRelay(name, clock, self.relay_log)
        self.sht3x = SimSht3x()
        self.i2c = self.sht3x
        self.door = SimPin(0)
        self.tamper = SimPin(0)
        self.presence = SimPin(0)
        self.fan = SimPWM()
        self.beacon = SimPin(0)
        self.store = store if store is not None else MemoryStore()
        self.cause = cause
        self.board = board
        self.seq0 = seq0
        self.wdt = None
        self.files = files if files is not None else MemoryFs()
        self.resets = 0

    def reset_cause(self) -> str:
        return self.cause

    def board_id(self) -> str:
        return self.board

    def rand_seq(self) -> int:
        return self.seq0

    def reset(self) -> None:
        # The simulator watches Supervisor.reset_requested and reboots the core itself.
        self.resets += 1

    def start_wdt(self, timeout_ms: int) -> SimWdt:
        self.wdt = SimWdt(timeout_ms)
        return self.wdt
