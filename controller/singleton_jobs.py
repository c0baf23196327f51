"""The controller's singleton jobs, run by its worker: operator actions from the ``actions``
table (every 0.2 s), the tick (liveness, command expiry and time-outs, alarms with time; every
second) and retention (hourly). One controller runs them inside each batch's transaction; with
several instances only the lease holder runs them, in a transaction of their own under the jobs'
fence, before its batch (``shared_jobs``, ``controller.fleet_share``).
"""

from __future__ import annotations

import logging
from typing import Protocol

from controller import fleet_share, handlers, operator_actions
from controller import service_backend as services
from controller.store import Store
from controller.tally import Tally

log = logging.getLogger(__name__)

Due = tuple[float, float, float]  # when the operator actions, the tick and the pruning are next due


class JobsWorker(operator_actions.Worker, Protocol):
    """What the jobs need of the controller besides what an action does."""

    store: Store  # ``tx()``: the jobs' own transaction (several instances)
    tally: Tally
    history_retention: float
    event_retention: float
    phone_retention: float

    def _send(self, out: list[handlers.Outgoing]) -> None: ...


def jobs(ctl: JobsWorker, store: Store, now: float, out: list, due: Due) -> Due:
    """The singleton jobs that are due, in the worker's open transaction: operator actions
    (every 0.2 s), the tick (liveness, command expiry and time-outs, alarms with time; every
    second), retention (hourly). Returns when each is next due."""
    next_actions, next_tick, next_prune = due
    actions = store.pending_actions() if now >= next_actions else []
    if ctl.config.shared:
        # Every kiosk lock of this run in one statement, before any is needed: the actions'
        # commands' kiosks with the ones the sweep may turn stale (the global lock order).
        also = operator_actions.action_kiosks(actions)
        if now >= next_tick:
            fleet_share.refresh_for_jobs(ctl.state, store.conn, now, ctl._sign, ctl._fresh, also=also)
        else:
            fleet_share.refresh_kiosks(ctl.state, store.conn, also, ctl._sign, ctl._fresh)
    if now >= next_actions:
        operator_actions.take_actions(ctl, store, actions, now, out)
        next_actions = now + 0.2
    if now >= next_tick:
        ctl.state, more = handlers.tick(ctl.state, now)
        out += more
        next_tick = now + 1.0
    if now >= next_prune:
        store.prune(history_before=now - ctl.history_retention, events_before=now - ctl.event_retention)
        services.forget_phones(store.conn, now - ctl.phone_retention)
        next_prune = now + 3600
    return next_actions, next_tick, next_prune


def shared_jobs(ctl: JobsWorker, now: float, due: Due) -> Due:
    """On the lease holder of several instances: the due jobs in a transaction of their own,
    under the jobs' fence, on state read from the database (``controller.fleet_share``)."""
    out: list[handlers.Outgoing] = []
    try:
        with ctl.store.tx() as store:
            fleet_share.fence(store.conn)
            ctl._fresh = fleet_share.begin(ctl.state)
            due = jobs(ctl, store, now, out, due)
            ctl.writes.write_effects(store, ctl.state, ctl._to_ack)
            ctl.tally.write(store.bump_counters)
    except Exception:
        log.exception("singleton jobs failed; trying again")
        ctl.state.effects.clear()
        ctl.tally.settle(committed=False)
        return due
    ctl.tally.settle(committed=True)
    ctl._send(out)
    return due
