"""Acknowledging kiosks' stored events (``events/ack``, docs/mqtt.md): which event ids are
committed and not yet acknowledged, per kiosk, and when they go out.

Only the worker thread (and ``Controller.stop`` after it ended) uses an ``EventAcks``: the ids
written in the worker's open transaction are handed over once it committed (``committed``), and
sent gathered over ``ACK_WINDOW`` (``send``).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from contract import payloads, topics

# Stored events are acknowledged to each kiosk at most this long after their commit, gathered
# over several batches: one ``events/ack`` per kiosk per window instead of one per kiosk per
# batch (in a burst that was about one publish per two events). Far below the kiosk's re-send
# wait (``kiosk_ui.agent.agent.ACK_WAIT``, 10 s).
ACK_WINDOW = 1.0


class EventAcks:
    def __init__(self) -> None:
        self.due: dict[str, list[str]] = {}  # kiosk -> event ids committed, not yet acknowledged
        self.since: float | None = None  # when the oldest of those was committed

    def committed(self, to_ack: dict[str, list[str]], now: float) -> None:
        """The open transaction's events (``to_ack``, emptied here) are committed: due for
        acknowledgement."""
        if not to_ack:
            return
        for kiosk_id, ids in to_ack.items():
            self.due.setdefault(kiosk_id, []).extend(ids)
        to_ack.clear()
        if self.since is None:
            self.since = now

    def send(self, publish: Callable[..., Any], now: float, *, flush: bool = False) -> None:
        """Tell each kiosk which of its events are committed (new or duplicate): only now may its
        journal let them go. Kiosks on a contract without acknowledgements just do not subscribe.
        Sent once ``ACK_WINDOW`` has passed since the oldest commit (or with ``flush``); a kiosk
        with a full acknowledgement's worth waiting gets that one at once."""
        if self.since is None:
            return
        every = flush or now - self.since >= ACK_WINDOW
        left: dict[str, list[str]] = {}
        for kiosk_id, ids in self.due.items():
            full = len(ids) if every else len(ids) - len(ids) % payloads.MAX_ACK_IDS
            for i in range(0, full, payloads.MAX_ACK_IDS):
                publish(topics.topic(kiosk_id, "events/ack"),
                        topics.encode_to_kiosk(payloads.events_ack(ids[i:i + payloads.MAX_ACK_IDS])),
                        *topics.FLAGS["events/ack"])
            if full < len(ids):
                left[kiosk_id] = ids[full:]
        self.due = left
        if not left:
            self.since = None
