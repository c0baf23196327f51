"""Test fixtures shared by every part: broker, simulated devices, MicroPython, Xvfb."""
