"""The kiosk's updater: install a signed release beside the running one, switch atomically,
prove health or roll back by itself, and recover from a power cut at any step (docs/updates.md).

It runs from the last *committed* release (``/opt/kiosk/committed``), never from the release on
trial, so a broken release cannot break its own roll-back.
"""
