"""The board's main loop on the RP2040 (started by main.py from the chosen set of files).

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
    hal = Rp2Hal()
    if hal.service_jumper():
        # Jumper on: leave the REPL to mpremote (no WDT started, Ctrl-C still works).
        print("supervisor: service jumper set, main loop not started")
        return
    # Ctrl-C must not stop the supervisor when the Pi writes a 0x03 byte in a frame.
    micropython.kbd_intr(-1)
    wdt = hal.start_wdt(WDT_MS)
    last = time.ticks_ms()
    now = 0
    sup = Supervisor(hal, now)
    rx = sys.stdin.buffer
    tx = sys.stdout.buffer
    poller = select.poll()
    poller.register(sys.stdin, select.POLLIN)
    buf = bytearray(64)
    mv = memoryview(buf)
    one = bytearray(1)
    while True:
        t = time.ticks_ms()
        now += time.ticks_diff(t, last)
        last = t
        # One byte per poll: readinto of a larger buffer would block until it is full.
        n = 0
        while n < len(buf) and poller.poll(0):
            if not rx.readinto(one):
                break
            buf[n] = one[0]
            n += 1
        if n:
            sup.receive(mv[:n], now)
        out = sup.tick(now)
        if out:
            tx.write(out)
        if sup.reset_requested:
            # Give USB time to carry the reply out, then restart into the new firmware.
            time.sleep_ms(100)
            hal.reset()
        if sup.service_s:
            break
        if sup.healthy(now):
            wdt.feed()
        time.sleep_ms(LOOP_MS)
    # Service mode (the host asked, e.g. before mpremote copies a new bundle): Ctrl-C works
    # again and a timer keeps the watchdog fed for service_s seconds, then stops, so a board
    # left in the REPL resets itself into the supervisor loop.
    hal.service_feed(wdt, sup.service_s)
    micropython.kbd_intr(3)
    print("supervisor: service mode for %d s" % sup.service_s)

