"""The worker's batches: how messages and calls waiting in the controller's inbox are gathered
into one transaction, split, parsed ahead of it, and which kiosks each batch locks.

Plain functions on a batch (a list of ``MQTTMessage`` and ``(fn, future, kiosks)`` calls, as
``controller.server.Controller`` queues them); the worker (``Controller._run``, ``_step``) calls
them. Nothing here touches the store or the broker.
"""

from __future__ import annotations

import queue
import threading
import time
from typing import Any

import paho.mqtt.client as mqtt

from contract import topics
from controller import alarms, fleet_share

BATCH = 2000  # messages per transaction at most
FIRST_BATCH = 200  # deciding messages taken ahead of a gathered batch's readings; more: not split (``deciding_first``)
ROUTINE = frozenset({"telemetry", "events"})  # topic kinds that wait in a gathered batch behind the deciding ones
GATHER = 0.05  # seconds a batch waits for more messages after its first (one commit for them all)


def kiosks_of(batch: list[Any]) -> list[str]:
    """Every kiosk a batch touches, locked and refreshed before any item is applied: those in its
    messages' topics and those of the calls in it (a command queued through the API). One lock
    statement for all of them keeps the global lock order; a call's kiosk locked later, while the
    batch already holds others, could deadlock with another instance's batch."""
    ids = [fleet_share.kiosk_of(m.topic) if isinstance(m, mqtt.MQTTMessage) else None for m in batch]
    calls = [k for item in batch if not isinstance(item, mqtt.MQTTMessage) for k in item[2]]
    return [k for k in ids if k is not None] + calls


def deciding_first(batch: list[Any]) -> tuple[list[Any], list[Any]]:
    """A gathered batch split in two, done in that order, each in its own transaction: first the
    messages that may decide something (a command's result, a status, a device's state, a
    reported config; not telemetry or events), then the rest. So a command's result or a fault
    is committed without waiting behind up to ``BATCH`` readings. A kiosk's messages keep their
    order: once one of a kiosk's messages (or a call naming it) stays in the rest, its later ones
    stay too. Not split: a batch of one kind, and one with more than ``FIRST_BATCH`` deciding
    messages (a storm of births, where a second transaction per batch only adds cost)."""
    first: list[Any] = []
    rest: list[Any] = []
    held: set[str | None] = set()  # kiosks with a message in ``rest``: their later ones follow it
    for item in batch:
        if not isinstance(item, mqtt.MQTTMessage):
            rest.append(item)
            held.update(item[2])
            continue
        kiosk = fleet_share.kiosk_of(item.topic)
        kind = item.topic.split("/", 3)[3] if kiosk is not None else ""
        if kiosk is None or kiosk in held or kind in ROUTINE:
            rest.append(item)
            held.add(kiosk)
        elif len(first) >= FIRST_BATCH:
            return batch, []  # a storm of births or faults: one transaction, as gathered, is cheaper
        else:
            first.append(item)
    return (first, rest) if first and rest else (batch, [])


def parse(item: Any) -> topics.Parsed | Exception | None:
    """A batch item's message parsed (pure work), or the exception parsing raised; None for a
    call or our own presence. Done before the batch's transaction: with several instances that
    transaction holds its kiosks' locks, and the other instances wait for them."""
    if not isinstance(item, mqtt.MQTTMessage) or item.topic == topics.CONTROLLER_STATUS:
        return None
    try:
        return topics.parse(item.topic, bytes(item.payload))
    except Exception as exc:  # noqa: BLE001 - raised again where the message is applied
        return exc


def locks(batch: list[Any], parsed: list[Any], exclusive: bool, rules: alarms.RuleSet) -> tuple[set[str], set[str]]:
    """The kiosks of ``batch`` to lock exclusive and those to lock shared only (none with
    ``exclusive``): a kiosk with any message that may decide something, or in a call, is
    exclusive (``fleet_share.needs_exclusive``)."""
    ex, sh = set(kiosks_of([i for i in batch if not isinstance(i, mqtt.MQTTMessage)])), set()
    for item, pre in zip(batch, parsed, strict=True):
        kiosk = fleet_share.kiosk_of(item.topic) if isinstance(item, mqtt.MQTTMessage) else None
        if kiosk is not None:
            (ex if exclusive or fleet_share.needs_exclusive(pre, rules) else sh).add(kiosk)
    return ex, sh - ex


def caught_up(later: list[Any], inbox: queue.SimpleQueue[Any], batch: list[Any], now: float,
              heard_until: float | None) -> float | None:
    """The controller time up to which every kiosk message that arrived is in ``batch`` or
    handled before it: ``now`` with the inbox empty, else the last message's arrival. A
    controller behind under load (start-up at 200 kiosks) must not call kiosks stale for
    telemetry waiting in its own inbox (soak, issue 17). ``later``: the rest of a gathered
    batch, not handled yet; ``heard_until``: the answer given last."""
    stamps_later = [m.timestamp for m in later if isinstance(m, mqtt.MQTTMessage) and m.timestamp]
    if stamps_later:
        # The rest of the gathered batch (``deciding_first``) is not handled yet: only what
        # arrived before the first of it is.
        return now - max(0.0, time.monotonic() - min(stamps_later))
    if inbox.empty():
        return now
    stamps = [m.timestamp for m in batch if isinstance(m, mqtt.MQTTMessage) and m.timestamp]
    return now - max(0.0, time.monotonic() - stamps[-1]) if stamps else heard_until


def gather(inbox: queue.SimpleQueue[Any], batch: list[Any], stop: threading.Event, *, wait: bool) -> None:
    """Fill ``batch`` from the inbox, up to ``BATCH``; with ``wait`` (a steady trickle such as
    telemetry) also what arrives within ``GATHER`` after its first item, so that costs a few
    transactions a second, not one per message. The first message after a quiet spell is
    handled at once."""
    if not batch:
        return
    drain(inbox, batch)
    if wait and len(batch) < BATCH:
        # One wait for the whole window, then take what came: blocking on the queue instead
        # woke this thread (and handed it the interpreter lock) once per message.
        stop.wait(GATHER)
        drain(inbox, batch)


def drain(inbox: queue.SimpleQueue[Any], batch: list[Any]) -> None:
    while len(batch) < BATCH:
        try:
            batch.append(inbox.get_nowait())
        except queue.Empty:
            return
