"""The sending side of the kiosk's event journal: what is published, what is held until the
controller acknowledges it, and when it is sent again.

One owner for the rule: the kiosk agent's sender thread drives it, and so do the fail-over
benchmark's light simulated kiosks (many kiosks on one thread), so the benchmark measures the
fleet's own behaviour, not a copy that could drift. The re-send decisions themselves are the pure
functions of :mod:`kiosk_ui.agent.resend_rule`.

Threads: :meth:`EventSender.pump` belongs to one thread (the sender). :meth:`puback` and
:meth:`committed` are called on the network thread with paho's locks held, and :meth:`presence`
on another: they only hand things over (deques, flags) and take no lock, so no lock is ever held
around a paho call.
"""

from __future__ import annotations

import collections
import time
from collections.abc import Callable
from typing import Any

import paho.mqtt.client as mqtt

from contract import payloads
from contract import topics as fleet
from kiosk_ui.agent import resend_rule
from kiosk_ui.agent.journal import Journal

INFLIGHT = 200  # journal messages published but not yet acknowledged, at most
ACK_WAIT = 10.0  # seconds without the controller's events/ack before the journal is sent again
ACK_WAIT_CAP = 300.0  # the wait doubles while nothing is acknowledged (no controller answers), up to this


def journal_event(journal: Journal, kiosk_id: str, *, event_id: str, boot_id: str, seq: int, ts: float,
                  type: str, fields: dict[str, Any]) -> int:
    """Journal one event as the contract's payload on the kiosk's events topic; returns how many of
    the oldest were dropped to keep the journal in bounds."""
    body = payloads.event(kiosk_id, event_id=event_id, boot_id=boot_id, seq=seq, ts=ts, type=type, fields=fields)
    return journal.append(fleet.topic(kiosk_id, "events"), fleet.encode(body), event_id)


class EventSender:
    """Publishes journaled events (``publish(topic, payload)`` returns paho's message info) and
    removes them from the journal once the controller committed them (``events/ack``), or, facing
    a controller whose presence says it does not acknowledge, on the broker's PUBACK."""

    def __init__(self, journal: Journal, publish: Callable[[str, bytes], mqtt.MQTTMessageInfo], *,
                 ack_wait: float = ACK_WAIT, monotonic: Callable[[], float] = time.monotonic) -> None:
        self.journal = journal
        self.publish = publish
        self.ack_wait = ack_wait
        self.resend_after = ack_wait  # doubles on each re-send nobody acknowledges, back on an ack
        self.monotonic = monotonic
        self.inflight: dict[int, int] = {}  # mid -> journal seq, until PUBACK
        self.unacked: dict[str, float] = {}  # event id -> when sent, until events/ack
        self._pubacks: collections.deque[int] = collections.deque()
        self._committed: collections.deque[tuple[str, ...]] = collections.deque()
        # Whether the controller acknowledges events (its presence says so). Until a controller has
        # said otherwise, hold every event for its acknowledgement: the journal bounds what is held.
        self.controller_acks = True
        self.resend_now = False  # the controller came back (or changed its word): send again at once
        self.restart_wait = False  # it came back and the broker queued the events for it
        self.resends = 0  # rounds in which unacknowledged events were sent again
        self.resent_events = 0  # events sent again in those rounds
        self.timed_resends = 0  # of those rounds, the ones the acknowledgement wait ran out for
        self._cursor = 0
        self._gen = 0  # the connection last pumped on

    # -- hand-overs from other threads ------------------------------------------------------------
    def puback(self, mid: int) -> None:
        self._pubacks.append(mid)

    def committed(self, event_ids: tuple[str, ...]) -> None:
        self._committed.append(event_ids)

    def presence(self, previous: bool | None, online: bool, body: dict[str, Any]) -> None:
        """The controller's retained presence was read (``previous`` as read before on this
        connection): switch between acknowledgement and PUBACK, and on its return send again at
        once or restart the wait, as :mod:`resend_rule` decides."""
        if online:
            acks = payloads.controller_acks_events(body)
            if acks != self.controller_acks:
                # Switching either way, start again from the oldest event: nothing is dropped that
                # the controller in charge has not confirmed its way.
                self.controller_acks = acks
                self.resend_now = True
        queued = payloads.controller_queued_while_away(body)
        if resend_rule.send_again_at_once(previous, online, queued):
            self.resend_now = True
        elif resend_rule.restart_wait(previous, online, queued):
            self.restart_wait = True

    # -- the sender's thread ----------------------------------------------------------------------
    def pump(self, *, gen: int, connected: bool, presence: bool | None) -> None:
        """Handle what was handed over, send again what is due, then publish from the journal up to
        ``INFLIGHT`` unacknowledged. ``gen`` counts connections: on a new one whatever was in
        flight is sent again (the controller de-duplicates by event id)."""
        if self._gen != gen:
            self._gen = gen
            self._forget()
        holding = self.controller_acks  # read once: another thread may change it meanwhile
        puback = []
        while self._pubacks:
            seq = self.inflight.pop(self._pubacks.popleft(), None)
            if seq is not None:
                puback.append(seq)
        if not holding:
            self.journal.remove(puback)  # an older controller: the broker's PUBACK is all there is
        committed: list[str] = []
        while self._committed:
            committed += self._committed.popleft()
        if committed:
            self.resend_after = self.ack_wait
            self.journal.remove_events(committed)
            for event_id in committed:
                self.unacked.pop(event_id, None)
        now = self.monotonic()
        if self.restart_wait:
            self.restart_wait = False
            for event_id in self.unacked:
                self.unacked[event_id] = now
        timed = not self.resend_now and holding and bool(self.unacked) and resend_rule.send_again_when_due(
            presence, min(self.unacked.values()), now, self.resend_after)
        if self.resend_now or timed:
            # No acknowledgement in time (or the controller came back): whatever it lost, it gets
            # again; it de-duplicates by event id. Unanswered, the kiosk waits longer each time, so a
            # fleet whose controller never answers does not flood the broker.
            if timed:
                self.resend_after = min(self.resend_after * 2, max(self.ack_wait, ACK_WAIT_CAP))
                self.timed_resends += 1
            self.resend_now = False
            if self.unacked or self.inflight:
                self.resends += 1
                self.resent_events += len(self.unacked) if holding else len(self.inflight)
            self._forget()
        room = INFLIGHT - (len(self.unacked) if holding else len(self.inflight))
        if not connected or room <= 0:
            return
        for seq, topic_name, payload, event_id in self.journal.pending(self._cursor, room):
            info = self.publish(topic_name, payload)
            if info.rc != mqtt.MQTT_ERR_SUCCESS:
                break
            self.inflight[info.mid] = seq
            if holding:
                self.unacked[event_id] = now
            self._cursor = seq

    def _forget(self) -> None:
        """Forget what was sent; the next pump starts at the oldest journaled event."""
        self.inflight.clear()
        self.unacked.clear()
        self._cursor = 0
