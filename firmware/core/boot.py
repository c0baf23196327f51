"""The supervisor's boot sequence, run once by ``Supervisor.__init__`` (core/supervisor.py).

It counts the boot and decides on safe mode (core/bootguard.py), builds the link, the relays,
the host watchdog (with its power-cycle history from flash), and outside safe mode the
enclosure and the beacon, then queues the ``boot`` event. Code that runs once per boot need not
stay in the board's heap: the supervisor drops this module right after (core.forget), so
nothing kept by the supervisor may be defined here (a function of this module would keep the
whole module alive).
"""

from firmware import VERSION
from firmware import link as L
from firmware.core.beacon import Beacon
from firmware.core.bootguard import BootGuard
from firmware.core.enclosure import Enclosure
from firmware.core.hostwatch import HostWatchdog
from firmware.core.relays import RelayBank


def start(sup, now: int) -> None:
    """Boot the supervisor ``sup`` (its ``hal`` and ``listener`` set) at ``now``."""
    hal = sup.hal
    sup.started = now
    sup.guard = BootGuard(hal.store)
    sup.safe = sup.guard.begin()
    sup.reset_cause = hal.reset_cause()
    # Payloads stay in the receive buffer: a chunk is written from there, a command's JSON
    # parsed from there.
    sup.link = L.Link(seq0=hal.rand_seq(), view=L.ANY_TYPE)
    sup.relays = RelayBank(hal.relays, sup.emit)
    # The power-cycle history lives in flash beside the files, under this boot's number.
    sup.watchdog = HostWatchdog(sup.relays, sup.emit, now, "host", hal.files, sup.guard.boots)
    if not sup.safe:  # in safe mode only the link, the host watchdog and the relays run
        sup.enclosure = Enclosure(hal, sup.emit, now)
        sup.beacon = Beacon(hal.beacon, now)
    sup.last_tick = now
    sup.emit("boot", {"reset": sup.reset_cause, "boots": sup.guard.boots, "safe": sup.safe, "fw": VERSION})
