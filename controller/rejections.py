"""Refused kiosk messages: counted (``rejected`` and ``rejected:<kind>``; a refused contract
version as ``refused_version:<version>``, for a bounded number of versions) and logged under a
budget, so a flood of junk cannot flood the log. Shared by the worker and the service thread.
"""

from __future__ import annotations

import logging

import paho.mqtt.client as mqtt

from controller.tally import Tally

log = logging.getLogger(__name__)

MAX_VERSION_LABELS = 16  # distinct refused contract versions counted by name; the rest as "other"


class Rejections:
    def __init__(self, tally: Tally) -> None:
        self.tally = tally
        self.log_budget = (0.0, 0)  # when the current 10 s of rejection lines began, lines in it

    def reject(self, msg: mqtt.MQTTMessage, why: str, now: float) -> None:
        self.tally.add("rejected")
        self.tally.add("rejected:" + reject_kind(why))
        # A flood of junk must not flood the log: at most 20 lines per 10 s, then a summary.
        start, n = self.log_budget
        if now - start > 10:
            if n > 20:
                log.warning("rejected %d more messages in the last 10 s", n - 20)
            start, n = now, 0
        n += 1
        self.log_budget = (start, n)
        if n <= 20:
            log.warning("rejected message on %s: %s", msg.topic[:120], why[:200])

    def version_counter(self, version: str) -> str:
        name = f"refused_version:{version}"
        with self.tally.lock:
            seen = self.tally.names("refused_version:")
            return name if name in seen or len(seen) < MAX_VERSION_LABELS else "refused_version:other"


def reject_kind(why: str) -> str:
    """The kind a rejection is counted as (``rejected:<kind>``), told from the error's words."""
    for needle, kind in (("surrogate", "bad_text"), ("not a JSON number", "bad_number"), ("nesting", "too_deep"),
                         ("exceeds", "too_large"), ("not UTF-8 JSON", "invalid_json"), ("unknown topic", "bad_topic"),
                         ("bad kiosk id", "bad_topic"), ("published under", "impersonation"),
                         ("internal", "internal"), ("unsupported contract version", "unsupported_version")):
        if needle in why:
            return kind
    return "bad_payload"
