"""Portable supervisor core: plain state machines that take ``now_ms`` and HAL objects.

Nothing under firmware/core imports ``machine``; firmware/hal provides the hardware.
"""


def forget(name: str) -> None:
    """Take the module ``firmware.core.<name>`` out of the board's heap: a module stays there
    while ``sys.modules`` or this package refers to it. The code loaded for one command (the
    file transfer, the rare commands: core/supervisor.py) is dropped this way right after it.
    Only on MicroPython: CPython (the simulator) has no heap budget, and importing again for
    every command would only cost time."""
    import sys

    if sys.implementation.name == "micropython":
        import gc

        sys.modules.pop("firmware.core." + name, None)
        globals().pop(name, None)
        gc.collect()
