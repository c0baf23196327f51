"""Board entry point: the main loop on the RP2040 (copy as /main.py, see docs/firmware.md).

USB serial (sys.stdin/sys.stdout buffers) is polled without blocking; the loop pumps the link,
ticks the core and feeds the hardware watchdog only while the core reports itself healthy. Time
is a monotonic ms counter built from ticks_diff, so the core never sees ticks_ms wrap.
"""

import select
import sys
import time

import micropython

from firmware.core.supervisor import Supervisor
from firmware.hal.rp2 import Rp2Hal

WDT_MS = 8000  # the RP2040 maximum is about 8.3 s
LOOP_MS = 5


def run() -> None:
    # Ctrl-C must not stop the supervisor when the Pi writes a 0x03 byte in a frame.
    micropython.kbd_intr(-1)
    hal = Rp2Hal()
    wdt = hal.start_wdt(WDT_MS)
    last = time.ticks_ms()
    now = 0
    sup = Supervisor(hal, now)
    rx = sys.stdin.buffer
    tx = sys.stdout.buffer
    poller = select.poll()
    poller.register(sys.stdin, select.POLLIN)
    buf = bytearray(64)
    while True:
        t = time.ticks_ms()
        now += time.ticks_diff(t, last)
        last = t
        while poller.poll(0):
            n = rx.readinto(buf)
            if not n:
                break
            sup.receive(memoryview(buf)[:n], now)
        out = sup.tick(now)
        if out:
            tx.write(out)
        if sup.healthy(now):
            wdt.feed()
        time.sleep_ms(LOOP_MS)


run()
