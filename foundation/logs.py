"""Logging set up once per process, with structured key=value fields.

Resident data never goes to a log: callers pass masked values only (see ``mask_id_number``).
"""

from __future__ import annotations

import logging
import os
import sys

_CONFIGURED = False


class _FieldsFormatter(logging.Formatter):
    """Appends the ``fields`` dict given through ``extra={"fields": {...}}`` as key=value pairs."""

    def format(self, record: logging.LogRecord) -> str:
        text = super().format(record)
        fields = getattr(record, "fields", None)
        if fields:
            text += " " + " ".join(f"{k}={v}" for k, v in fields.items())
        return text


def setup_logging(level: str | int | None = None, *, stream=None) -> None:
    """Configure the root logger once; later calls only change the level."""
    global _CONFIGURED
    if level is None:
        level = os.environ.get("KIOSK_LOG_LEVEL", "INFO")
    root = logging.getLogger()
    if isinstance(level, str):
        level = logging.getLevelName(level.upper())
        if not isinstance(level, int):
            level = logging.INFO
    root.setLevel(level)
    if _CONFIGURED:
        return
    handler = logging.StreamHandler(stream or sys.stderr)
    handler.setFormatter(_FieldsFormatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    root.addHandler(handler)
    _CONFIGURED = True


def mask_id_number(number: str) -> str:
    """Mask an ID number as ``4401**********1234``: first 4 and last 4 kept."""
    if len(number) <= 8:
        return "*" * len(number)
    return number[:4] + "*" * (len(number) - 8) + number[-4:]


def mask_phone(number: str) -> str:
    """Mask a phone number: a mobile as ``138****5678`` (first 3 and last 4 kept); a shorter one
    (a 7-8 digit landline) keeps only its last 2 digits, as the mobile's mask would leave most of
    it readable."""
    if len(number) >= 11:
        return number[:3] + "*" * (len(number) - 7) + number[-4:]
    if len(number) <= 4:
        return "*" * len(number)
    return "*" * (len(number) - 2) + number[-2:]


def mask_name(name: str) -> str:
    """Mask a personal name: keep the first character only (``张*``, ``W***``)."""
    if not name:
        return ""
    return name[0] + "*" * (len(name) - 1)
