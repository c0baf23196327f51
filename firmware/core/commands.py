"""The host's commands other than the heartbeat and the file transfer: hello, relay, hold,
beacon, status, service, reset.

They are rare next to the heartbeat (a status every telemetry period, a hello per connection),
so their code is not kept in the board's heap: the supervisor (core/supervisor.py) loads this
module for one command and drops it right after (core.forget), as it does with the file
transfer's modules. Each handler takes the supervisor and returns the reply's body or raises
CommandError.
"""

from firmware import VERSION
from firmware import link as L
from firmware.core.hostwatch import MAX_HOLD_S
from firmware.core.relays import CommandError


def command(sup, mtype: int, body, now: int):
    if mtype == L.HELLO:
        return sup.hello(now)  # through the supervisor: the simulator's old board answers its own
    if mtype == L.STATUS:
        return sup.status(now)
    if mtype == L.RELAY:
        name = body.get("relay")
        off_s = body.get("off_s", 5)
        if not isinstance(name, str) or not isinstance(off_s, (int, float)) or off_s < 0:
            raise CommandError("bad_args")
        return {"relay": name, "off_ms": sup.relays.pulse(name, int(off_s * 1000), now)}
    if mtype == L.HOLD:
        seconds = body.get("seconds")
        if not isinstance(seconds, int) or seconds < 0 or seconds > MAX_HOLD_S:
            raise CommandError("bad_args")
        return {"hold_s": sup.watchdog.hold(now, seconds)}
    if mtype == L.BEACON:
        if sup.beacon is None:
            raise CommandError("safe_mode")
        pattern = body.get("pattern")
        if not isinstance(pattern, str) or not sup.beacon.set(pattern, now):
            raise CommandError("unknown_pattern")
        return {"pattern": pattern}
    if mtype == L.SERVICE:
        seconds = body.get("seconds", 600)
        if not isinstance(seconds, int) or not 10 <= seconds <= 3600:
            raise CommandError("bad_args")
        sup.service_s = seconds
        return {"service_s": seconds}
    if mtype == L.RESET:
        sup.reset_requested = True
        return {"reset": True}
    raise CommandError("unknown_type")


def hello(sup, now: int) -> dict:
    return {"fw": VERSION, "proto": sup.link.version, "board": sup.hal.board_id(),
            "reset": sup.reset_cause, "boots": sup.guard.boots, "safe": sup.safe,
            "uptime_s": (now - sup.started) // 1000}


def status(sup, now: int) -> dict:
    wd = sup.watchdog
    st = {"host": wd.state, "hold_s": wd.hold_left_s(now),
          "relays": sup.relays.states(), "safe": sup.safe, "faults": sup.faults + wd.faults,
          "link_errors": sup.link.decoder.error_count(), "dropped": sup.link.dropped}
    enc = sup.enclosure
    if enc is not None:
        c = enc.celsius
        rh = enc.rh
        st["c"] = None if c is None else round(c, 1)
        st["rh"] = None if rh is None else round(rh, 1)
        st["sensor"] = enc.sensor_status
        st["door"] = "open" if enc.door.state else "closed"
        st["tamper"] = enc.tamper.state
        st["presence"] = enc.presence.state
        st["fan"] = enc.fan.duty
    if sup.beacon is not None:
        st["beacon"] = sup.beacon.pattern
    return st
