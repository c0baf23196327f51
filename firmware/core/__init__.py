"""Portable supervisor core: plain state machines that take ``now_ms`` and HAL objects.

Nothing under firmware/core imports ``machine``; firmware/hal provides the hardware.
"""
