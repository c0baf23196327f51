"""Supervisor board firmware (MicroPython, RP2040 class); see docs/firmware.md.

The package is importable from CPython too: the host driver and the simulator use the same
link codec (firmware.link) and the simulator runs the real core (firmware.core) on the host HAL.
"""

VERSION = "1.5.2"
