"""Writing what the pure handlers decided: the worker's effects (``controller.effects``) and the
kiosk records they changed, in the worker's open transaction, each write isolated so one row the
store refuses is dropped and counted, never the batch; and the telemetry held in memory between
bulk writes (the latest readings and the downsampled history rows).

One ``EffectWriter`` per controller, used by its worker thread only (and by ``Controller.stop``
once that thread ended).
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

from controller import effects as fx
from controller import fleet_share, handlers
from controller.store import Store

log = logging.getLogger(__name__)

# Telemetry's latest readings and its downsampled history rows are held in memory and written in
# bulk at least this often (history also once HISTORY_BATCH rows wait), and on a clean stop: a
# crash loses at most this window of them, never an event (docs/benchmarks.md, "Telemetry CPU").
HELD_FLUSH = 5.0
HISTORY_BATCH = 1000


class EffectWriter:
    def __init__(self, count: Callable[..., None], *, shared: bool) -> None:
        self.count = count  # the controller's counters (``Tally.add``)
        self.shared = shared  # several instances: readings written under shared kiosk locks
        self.history: list[fx.HistorySample] = []  # held until the next bulk write (HELD_FLUSH)
        self.next_held_flush = 0.0
        # Kiosks locked shared in the open transaction: the stored reading's ts each was read with,
        # and the telemetry models applied to it (``fleet_share.write_readings``).
        self.reading_bases: dict[str, Any] = {}
        self.readings: dict[str, list[Any]] = {}

    def write_effects(self, store: Store, state: handlers.FleetState, to_ack: dict[str, list[str]]) -> None:
        """The effects the handlers left in ``state.effects`` and the kiosk records they changed
        (``state.dirty``), written in the open transaction; the ids of the events written are added
        to ``to_ack`` (acknowledged once it commits)."""
        # Every write is isolated in a savepoint: a row SQLite refuses is dropped and counted
        # ("dropped:<what>"), the rest of the batch commits, and nothing stays pending forever.
        events: list[fx.EventReceived] = []
        for eff in state.effects:
            if isinstance(eff, fx.EventReceived):
                events.append(eff)
            elif isinstance(eff, fx.HistorySample):
                self.history.append(eff)
            else:
                self.isolated(store, eff.kind, lambda e=eff: self.write_effect(store, state, e))
        state.effects.clear()
        if events:
            stored, new = self.rows(store, "events", store.record_events, events)
            # Stored or refused and counted as dropped, each is settled once this commits: the
            # kiosk may let it go (a refused row would only be refused again).
            for e in events:
                to_ack.setdefault(e.kiosk_id, []).append(e.event.id)
            self.count("events_new", new)
            self.count("events_duplicate", sum(stored) - new)
        if state.dirty:
            dirty = sorted(state.dirty)
            state.fresh.difference_update(dirty)  # the whole record is written anyway
            records = [state.kiosks[k] for k in dirty if k in state.kiosks]
            for rec, ok in zip(records, self.rows(store, "kiosks", store.upsert_kiosks, records)[0], strict=True):
                if not ok:
                    self.restore_kiosk(store, state, rec["kiosk_id"])
            # Only now: should the whole transaction still fail, they are written with the next batch.
            state.dirty.difference_update(dirty)

    def write_held(self, store: Store, state: handlers.FleetState, now: float, *, flush: bool = False) -> None:
        """Telemetry held in memory: the history rows and the latest readings of kiosks whose
        only change was a reading, in bulk once ``HELD_FLUSH`` has passed (or with ``flush``)."""
        if not (flush or now >= self.next_held_flush or len(self.history) >= HISTORY_BATCH):
            return
        self.next_held_flush = now + HELD_FLUSH
        if self.history:
            history, self.history = self.history, []
            self.rows(store, "history", store.record_history, history)
        if state.fresh:
            fresh = sorted(state.fresh)
            state.fresh.clear()
            records = [state.kiosks[k] for k in fresh if k in state.kiosks]
            if self.shared:
                # Other instances may write these kiosks' readings at the same time (shared locks).
                late = fleet_share.write_readings(store.conn, records, self.reading_bases, self.readings)
                if late:
                    self.count("telemetry_late", late)
            else:
                self.rows(store, "kiosks", store.update_readings, records)

    def write_effect(self, store: Store, state: handlers.FleetState, eff: fx.Effect) -> None:
        match eff:
            case fx.DeviceReported(kiosk_id, name, status, at):
                store.upsert_device(kiosk_id, name, dict(status), at)
            case fx.AlarmChanged(ch, at) if ch.action == "hold":
                store.hold_alarm(*ch.key, ch.severity, ch.message, at, ch.params or {})
            case fx.AlarmChanged(ch, at) if ch.action == "release":
                store.release_alarm(*ch.key)
            case fx.AlarmChanged(ch, at) if ch.action == "raise":
                alarm_id = store.raise_alarm(*ch.key, ch.severity, ch.message, at, ch.params or {})
                if ch.key in state.open_alarms:
                    state.open_alarms[ch.key]["id"] = alarm_id
            case fx.AlarmChanged(ch, at):
                store.clear_alarms(*ch.key, at)
            case fx.CommandSent(command_id, sent_at):
                store.update_command(command_id, status="sent", sent_at=sent_at)
            case fx.CommandFinished(command_id, status, finished_at, error, result):
                store.finish_command(command_id, status, finished_at, error, result)

    def isolated(self, store: Store, what: str, fn: Callable[[], Any], *, count: bool = True) -> tuple[Any] | None:
        """Run ``fn`` in a savepoint: ``(result,)``, or None once rolled back (and, with ``count``,
        dropped and counted)."""
        try:
            with store.savepoint():
                result = fn()
        except (*store.refusals, UnicodeError, ValueError, TypeError, OverflowError) as exc:
            if count:
                self.count("dropped")
                self.count("dropped:" + what)
                log.error("store refused a %s row, dropped it: %s", what, str(exc)[:200])
            return None
        return (result,)

    def rows(self, store: Store, what: str, write: Callable[[list], Any], rows: list) -> tuple[list[bool], int]:
        """Write ``rows`` in one go; if SQLite refuses, one by one so only the bad rows are dropped.
        Returns which rows were stored and the sum of the writer's integer results."""
        whole = self.isolated(store, what, lambda: write(rows), count=len(rows) == 1)
        if whole is not None:
            return [True] * len(rows), whole[0] or 0
        if len(rows) == 1:
            return [False], 0
        stored, total = [], 0
        for row in rows:
            one = self.isolated(store, what, lambda r=row: write([r]))
            stored.append(one is not None)
            total += (one[0] or 0) if one is not None else 0
        return stored, total

    def restore_kiosk(self, store: Store, state: handlers.FleetState, kiosk_id: str) -> None:
        """A kiosk record the store refused goes back to what was last stored, so it is not retried forever."""
        stored = store.kiosk_record(kiosk_id)
        if stored is None:
            state.kiosks.pop(kiosk_id, None)
        else:
            handlers.adopt(state, [stored])
