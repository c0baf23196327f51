"""Board entry point: the main loop on the RP2040 (copy as /main.py, see docs/firmware.md).

It picks the set of firmware files to run (firmware/bootsel.py: a staged update's set on trial,
or the last good one), then runs the main loop (firmware/loop.py) of that set. This file stays
small and is the same in every set: a staged update changes the sets, not the root main.py.
"""

import sys


def pick_set() -> None:
    """Count this boot against a set on trial and put the chosen set first on sys.path."""
    from firmware import bootsel
    from firmware.hal.fs import DirFs

    chosen = bootsel.choose(DirFs("/"))
    # Forget the root set's modules (and bootsel's bytecode): the chosen set's own are imported next.
    for name in list(sys.modules):
        if name == "firmware" or name.startswith("firmware."):
            del sys.modules[name]
    if chosen:
        sys.path.insert(0, "/" + chosen)


pick_set()

from firmware.loop import run  # noqa: E402  (after the set is chosen)

run()
