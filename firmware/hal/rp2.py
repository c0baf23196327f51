"""RP2040 HAL: machine.Pin, I2C, PWM and WDT behind the interface in firmware/hal/__init__.py.

Pin numbers are the kiosk's supervisor board wiring (docs/firmware.md). Relay coils are driven
through low-side transistors (1 = coil energised); the loads are wired to the normally-closed
contact, so a board that is reset or unpowered leaves everything powered.
"""

import json
import os

import machine

from firmware.hal.fs import DirFs

RELAY_PINS = {"host": 2, "printer": 3, "id_reader": 4, "card_reader": 5, "scanner": 6}
I2C_SDA = 8
I2C_SCL = 9
DOOR_PIN = 10      # reed switch to GND, closed while the door is shut
TAMPER_PIN = 11    # micro switch to GND, closed while the cover is on
PRESENCE_PIN = 12  # PIR output, active high
FAN_PIN = 15
BEACON_PIN = 16
SERVICE_PIN = 22   # jumper to GND: do not start the main loop (REPL for mpremote)
BOOT_FILE = "/boot.json"


class NcRelay:
    """value(1) powers the load: the coil is off, the normally-closed contact conducts."""

    def __init__(self, pin_no: int) -> None:
        self._pin = machine.Pin(pin_no, machine.Pin.OUT, value=0)

    def value(self, v=None):
        if v is None:
            return 0 if self._pin.value() else 1
        self._pin.value(0 if v else 1)
        return None


class OpenWhenHigh:
    """A switch to GND with pull-up: reads 1 ("open"/"active") when the contact is open."""

    def __init__(self, pin_no: int) -> None:
        self._pin = machine.Pin(pin_no, machine.Pin.IN, machine.Pin.PULL_UP)

    def value(self, v=None):
        return self._pin.value()


class FlashStore:
    def __init__(self, path: str = BOOT_FILE) -> None:
        self.path = path

    def load(self):
        try:
            with open(self.path) as f:
                return json.loads(f.read())
        except OSError:
            return None

    def save(self, record: dict) -> None:
        tmp = self.path + ".tmp"
        with open(tmp, "w") as f:
            f.write(json.dumps(record))
        # rename is atomic on littlefs: a power cut never leaves a half-written record.
        os.rename(tmp, self.path)


class Rp2Hal:
    def __init__(self) -> None:
        self.relays = {}
        for name in RELAY_PINS:
            self.relays[name] = NcRelay(RELAY_PINS[name])
        self.i2c = machine.I2C(0, sda=machine.Pin(I2C_SDA), scl=machine.Pin(I2C_SCL), freq=100000)
        self.door = OpenWhenHigh(DOOR_PIN)
        self.tamper = OpenWhenHigh(TAMPER_PIN)
        self.presence = machine.Pin(PRESENCE_PIN, machine.Pin.IN, machine.Pin.PULL_DOWN)
        self.fan = machine.PWM(machine.Pin(FAN_PIN), freq=25000, duty_u16=0)
        self.beacon = machine.Pin(BEACON_PIN, machine.Pin.OUT, value=0)
        self.store = FlashStore()
        self.files = DirFs("/")

    def service_jumper(self) -> bool:
        return machine.Pin(SERVICE_PIN, machine.Pin.IN, machine.Pin.PULL_UP).value() == 0

    def service_feed(self, wdt, seconds: int) -> None:
        """Feed ``wdt`` once a second for ``seconds`` from a timer, then let it bite."""
        left = [seconds]

        def feed(timer) -> None:
            left[0] -= 1
            if left[0] > 0:
                wdt.feed()
            else:
                timer.deinit()

        wdt.feed()
        self._service_timer = machine.Timer(-1, mode=machine.Timer.PERIODIC, period=1000, callback=feed)

    def reset_cause(self) -> str:
        cause = machine.reset_cause()
        if cause == machine.PWRON_RESET:
            return "power_on"
        if cause == machine.WDT_RESET:
            return "watchdog"
        return "soft"

    def reset(self) -> None:
        machine.reset()

    def board_id(self) -> str:
        uid = machine.unique_id()
        return "".join("%02x" % b for b in uid)

    def rand_seq(self) -> int:
        return (os.urandom(1)[0] % 255) + 1

    def start_wdt(self, timeout_ms: int):
        return machine.WDT(timeout=timeout_ms)
