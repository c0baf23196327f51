"""Pure decisions of the controller: ``(state, message, now) -> (state, [outgoing])``.

The message is the contract's parsed form (``contract.topics.Parsed``): handlers and alarm rules
read its typed model (``KioskStatus``, ``Telemetry``, ``DeviceStatus``, ``Event``, ``ConfigReported``,
``CommandResult``), never the raw JSON. No I/O here. Besides outgoing MQTT messages a handler leaves
*effects* in ``state.effects`` (typed, one frozen dataclass per kind in :mod:`controller.effects`:
events to store, alarm changes, command updates, telemetry history rows); the server writes them
through the store's methods in one transaction and persists the kiosks marked dirty.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from contract import desired_config, device_status, payloads, topics, versions
from contract.commands import CommandResult
from contract.payloads import ConfigReported, Event, KioskStatus, Telemetry, merge_telemetry
from contract.topics import Parsed
from controller import alarms, config_layers, fleet_clock, report_order
from controller import effects as fx
from controller.commands import OPEN, RESULT_TO_STATUS
from controller.stale_watch import StaleWatch
from foundation.errors import ProtocolError


@dataclass
class Outgoing:
    """A message to publish; ``kind`` names its topic kind, whose QoS/retain the contract fixes."""

    topic: str
    body: dict[str, Any]
    kind: str = "cmd"

    @property
    def qos(self) -> int:
        return topics.FLAGS[self.kind][0]

    @property
    def retain(self) -> bool:
        return topics.FLAGS[self.kind][1]


@dataclass
class FleetState:
    kiosks: dict[str, dict[str, Any]] = field(default_factory=dict)
    dirty: set[str] = field(default_factory=set)
    # Kiosks whose only change is a newer telemetry reading (latest values, last_seen): held here
    # in memory and written in bulk now and then by the server, not with every message.
    fresh: set[str] = field(default_factory=set)
    telemetry_period: float = 30.0
    stale_after_periods: int = 3
    history_interval: float = 300.0
    rules: tuple[alarms.Rule, ...] = ()
    open_alarms: dict[alarms.AlarmKey, dict[str, Any]] = field(default_factory=dict)
    # Conditions of rules with a hold (``for``) that are true but not yet long enough: since when,
    # and the alarm they will raise (persisted, so the lease holder's tick raises them).
    held: dict[alarms.AlarmKey, dict[str, Any]] = field(default_factory=dict)
    layers: config_layers.Layers = field(default_factory=dict)
    commands: dict[str, dict[str, Any]] = field(default_factory=dict)  # open ones, with "wire" (signed)
    history_bucket: dict[str, float] = field(default_factory=dict)
    effects: list[fx.Effect] = field(default_factory=list)
    time_zone: str = fleet_clock.DEFAULT_ZONE  # the controller's: pushed with every desired config
    # Counters for the controller's metrics (``controller.ingest`` adds and clears them after each message).
    counts: dict[str, int] = field(default_factory=dict)
    # Since when the controller hears the broker (its edge sets it on every connect, None while it
    # does not): a kiosk's silence counts only from then, since the controller could not hear it
    # before. A kiosk that went away meanwhile is offline by its will, which waits at the broker.
    listening_since: float | None = 0.0
    # Up to when the controller has handled every kiosk message that reached it (its edge sets it
    # before each batch; None: no backlog is known). Behind under load, a kiosk's silence counts
    # only up to there: its telemetry may be waiting in the controller's own inbox.
    heard_until: float | None = None
    # The online kiosks the liveness sweep must look at, by when each may go stale (``tick``).
    # Records put into ``kiosks`` from outside the handlers go through :func:`adopt`.
    stale_watch: StaleWatch = field(default_factory=StaleWatch)

    # Several instances (``controller.fleet_share``): a telemetry reading older (by its ``ts``)
    # than the kiosk's stored one is late and does not replace it. One controller reads its
    # kiosks' messages in order and keeps every reading as it comes.
    ordered_readings: bool = False

    # ``rules`` pre-filtered per source, rebuilt when ``rules`` is replaced (see :func:`rule_set`).
    rule_set: alarms.RuleSet = field(default_factory=lambda: alarms.RuleSet(()), repr=False, compare=False)

    def __post_init__(self) -> None:
        adopt(self, list(self.kiosks.values()))


class Decides(Exception):  # noqa: N818 - a verdict, not a failure
    """Raised by :func:`handle` with ``lane="shared"`` before it changes anything: the message would
    decide something (a kiosk not yet known, stale or unknown coming online, an alarm raised,
    cleared, held or released), which needs the kiosk's exclusive lock."""


def rule_set(state: FleetState) -> alarms.RuleSet:
    """``state.rules`` pre-filtered (rebuilt when the rules were replaced)."""
    if state.rule_set.rules is not state.rules:
        state.rule_set = alarms.RuleSet(state.rules)
    return state.rule_set


def adopt(state: FleetState, records: Iterable[dict[str, Any]]) -> None:
    """Put kiosk records read from the store into ``state`` (replacing what it held of them), so
    the liveness sweep watches the online ones."""
    for rec in records:
        state.kiosks[rec["kiosk_id"]] = rec
        if rec["state"] == "online":
            state.stale_watch.watch(rec["kiosk_id"], rec["last_seen"])


def _heard(state: FleetState, rec: dict[str, Any], now: float) -> None:
    if now < rec["last_seen"]:
        # The clock stepped back: the pending check would come late by the step.
        state.stale_watch.watch(rec["kiosk_id"], now)
    rec["last_seen"] = now


def _record(state: FleetState, kiosk_id: str, now: float) -> dict[str, Any]:
    rec = state.kiosks.get(kiosk_id)
    if rec is None:
        rec = {"kiosk_id": kiosk_id, "state": "unknown", "reason": "", "last_seen": now, "state_since": now,
               "site": "", "mode": "", "boot_id": "", "versions": {}, "devices": {}, "telemetry": {},
               "last_telemetry": 0.0, "reported": {}, "contract": ""}
        state.kiosks[kiosk_id] = rec
    return rec


def _alarm_changes(state: FleetState, changes: list[alarms.Change], now: float) -> None:
    for ch in changes:
        if ch.action == "hold":
            state.held[ch.key] = {"since": now, "severity": ch.severity, "message": ch.message, "params": ch.params}
        elif ch.action == "release":
            state.held.pop(ch.key, None)
        elif ch.action == "raise":
            state.open_alarms[ch.key] = {"raised_at": now, "message": ch.message, "severity": ch.severity}
            state.held.pop(ch.key, None)  # its row goes with the raise (the store's raise_alarm)
        else:
            state.open_alarms.pop(ch.key, None)
        state.effects.append(fx.AlarmChanged(ch, now))


def _set_state(state: FleetState, rec: dict[str, Any], new: str, reason: str, now: float) -> None:
    changed = rec["state"] != new
    if changed:
        rec["state_since"] = now
    if new == "online":
        state.stale_watch.watch(rec["kiosk_id"], rec["last_seen"])
    rec["state"] = new
    rec["reason"] = reason
    _alarm_changes(state, alarms.evaluate(rule_set(state), "kiosk", rec["kiosk_id"], "", rec, state.open_alarms,
                                          state.held), now)


def desired_message(state: FleetState, kiosk_id: str) -> Outgoing | None:
    rec = state.kiosks.get(kiosk_id, {})
    version, body = config_layers.desired_for(state.layers, kiosk_id, rec.get("site", ""), time_zone=state.time_zone)
    if not version:
        return None
    body = desired_config.for_version(body, announced_contract(rec))
    return Outgoing(topics.topic(kiosk_id, "config/desired"), payloads.config_desired(version, body),
                    "config/desired")


def announced_contract(rec: dict[str, Any]) -> tuple[int, int]:
    """The contract version the kiosk's latest birth announced, as stored in its record (so every
    controller instance reads the same): which desired-config keys it knows. A kiosk whose birth
    no controller has applied yet is taken for 1.0, the safe reading."""
    try:
        return versions.parse_version(rec.get("contract") or "")
    except ProtocolError:
        return versions.MAJOR, 0


def _send_queued(state: FleetState, kiosk_id: str, now: float) -> list[Outgoing]:
    out = []
    for cmd in sorted(state.commands.values(), key=lambda c: c["issued_at"]):
        if cmd["kiosk_id"] == kiosk_id and cmd["status"] == "queued" and now < cmd["expires_at"]:
            out.append(Outgoing(topics.cmd_topic(kiosk_id, cmd["name"]), cmd["wire"], "cmd"))
            cmd["status"], cmd["sent_at"] = "sent", now
            state.effects.append(fx.CommandSent(cmd["id"], now))
    return out


def _status(state: FleetState, rec: dict[str, Any], st: KioskStatus, kiosk_id: str,
            now: float, contract: tuple[int, int]) -> list[Outgoing]:
    out: list[Outgoing] = []
    if superseded(st, rec.get("status_stamp")):
        # From a connection older than the newest birth applied (persisted, so whichever controller
        # instance applied it): a late will of an old connection must not turn a connected kiosk offline.
        _count(state, "status_superseded")
        return out
    if st.state == "online" and st.ts is not None and st.ts < rec.get("status_ts", st.ts):
        # A birth older than one already applied (redelivered late, or taken by another
        # controller's share first): the newer state stands. Order comes from the kiosk's clock.
        return out
    if st.state == "online":
        if st.ts is not None:
            rec["status_ts"] = st.ts
        if st.stamp is not None:
            rec["status_stamp"] = st.stamp
        site_before = rec["site"]
        contract_before = rec.get("contract") or None
        rec["contract"] = f"{contract[0]}.{contract[1]}"
        rec["mode"] = st.mode
        rec["boot_id"] = st.boot_id
        if st.site is not None:
            rec["site"] = st.site
        rec["versions"] = dict(st.versions)
        _heard(state, rec, now)
        _set_state(state, rec, "online", "", now)
        desired = desired_message(state, kiosk_id)
        # Sent again when the kiosk moved, missed a version, or now speaks a contract that knows
        # more of the config's keys (it was updated).
        if desired and (rec["site"] != site_before or contract_before not in (None, rec["contract"])
                        or (rec["reported"] or {}).get("version") != desired.body["version"]):
            out.append(desired)
        out += _send_queued(state, kiosk_id, now)
    elif not (st.boot_id and rec["boot_id"] and st.boot_id != rec["boot_id"] and rec["state"] == "online"):
        # A will from an older connection must not turn a kiosk offline that has since rebooted.
        _set_state(state, rec, "offline", st.reason, now)
    return out


def superseded(st: KioskStatus, held: int | None) -> bool:
    """True when ``st`` comes from a connection older than the one whose birth stamped ``held``.
    A status without a stamp (a kiosk older than the stamp) is never superseded: it behaves as before."""
    return st.stamp is not None and held is not None and st.stamp < held


def handle(state: FleetState, msg: Parsed, now: float, lane: str = "exclusive") -> tuple[FleetState, list[Outgoing]]:
    """``lane="shared"``: the kiosk is locked shared only (``controller.fleet_share``); a
    telemetry or event that would change more than the kiosk's latest reading raises
    :class:`Decides` and leaves ``state`` as it was."""
    known = msg.kiosk_id in state.kiosks
    model = msg.model
    if lane == "shared" and not known:
        raise Decides(msg.kiosk_id)
    rec = _record(state, msg.kiosk_id, now)
    out: list[Outgoing] = []
    reading_only = False  # a newer telemetry reading of a known kiosk, and nothing else changed
    if isinstance(model, KioskStatus):
        out = _status(state, rec, model, msg.kiosk_id, now, msg.version)
    elif isinstance(model, Telemetry):
        if late_reading(state, rec, model):
            return _late(state, rec, msg.kiosk_id, now, lane), out
        # A 1.2 delta carries only what changed: alarms and the console read the merged whole.
        merged = merge_telemetry(rec["telemetry"], model)
        changes = alarms.evaluate(rule_set(state), "telemetry", msg.kiosk_id, "", merged, state.open_alarms, state.held)
        if lane == "shared" and (changes or rec["state"] in ("stale", "unknown")):
            raise Decides(msg.kiosk_id)
        _heard(state, rec, now)
        rec["last_telemetry"] = now
        rec["telemetry"] = merged.to_dict()
        if rec["state"] in ("stale", "unknown"):
            _set_state(state, rec, "online", "", now)
        else:
            reading_only = known
        _alarm_changes(state, changes, now)
        bucket = math.floor(now / state.history_interval) * state.history_interval
        if state.history_bucket.get(msg.kiosk_id) != bucket:
            state.history_bucket[msg.kiosk_id] = bucket
            state.effects.append(fx.HistorySample(msg.kiosk_id, now, rec["telemetry"]))
    elif isinstance(model, device_status.DeviceStatus):
        name = msg.name or ""
        if report_order.superseded(rec["devices"].get(name), model.ts, model.boot_id, rec["boot_id"]):
            # Published before the state stored (another instance handled the newer one first):
            # the stored state stands, and the alarms, judged on it, stay as they are.
            _count(state, "device_superseded")
            return state, out
        dev = {**model.to_dict(), **_order_of(model.ts, model.boot_id)}
        rec["devices"] = {**rec["devices"], name: dev}
        state.effects.append(fx.DeviceReported(msg.kiosk_id, name, dev, now))
        _alarm_changes(state, alarms.evaluate(rule_set(state), "device", msg.kiosk_id, name, model, state.open_alarms,
                                                   state.held), now)
    elif isinstance(model, Event):
        changes = alarms.evaluate_event(rule_set(state), msg.kiosk_id, model, state.open_alarms)
        if lane == "shared" and changes:
            raise Decides(msg.kiosk_id)
        state.effects.append(fx.EventReceived(msg.kiosk_id, model, now, msg.text))
        _alarm_changes(state, changes, now)
    elif isinstance(model, ConfigReported):
        if report_order.superseded(rec["reported"], model.ts, model.boot_id, rec["boot_id"]):
            _count(state, "reported_superseded")  # an older report: the console keeps the newer
            return state, out
        rec["reported"] = model.to_dict()
    elif isinstance(model, CommandResult):
        cmd = state.commands.get(model.id)
        if cmd is not None and cmd["kiosk_id"] == msg.kiosk_id and cmd["status"] in OPEN:
            status = RESULT_TO_STATUS[model.status]
            state.effects.append(fx.CommandFinished(cmd["id"], status, now, model.error or model.reason, model.data))
            del state.commands[cmd["id"]]
    if known and isinstance(model, Event):
        return state, out  # an event changes nothing of a known kiosk's record: no row to rewrite
    if reading_only:
        state.fresh.add(msg.kiosk_id)  # written in bulk by the server (docs/benchmarks.md)
        return state, out
    state.dirty.add(msg.kiosk_id)
    return state, out


def _count(state: FleetState, name: str) -> None:
    state.counts[name] = state.counts.get(name, 0) + 1


def _order_of(ts: float | None, boot_id: str) -> dict[str, Any]:
    """What a stored device status keeps of its place in the kiosk's order (report_order)."""
    return {k: v for k, v in (("ts", ts), ("boot_id", boot_id)) if v not in (None, "")}


def late_reading(state: FleetState, rec: dict[str, Any], model: Telemetry) -> bool:
    """With ``ordered_readings``: ``model`` is older than the reading the kiosk's record holds."""
    if not state.ordered_readings or model.ts is None:
        return False
    held = rec["telemetry"].get("ts") if isinstance(rec["telemetry"], dict) else None
    return isinstance(held, int | float) and model.ts < held


def _late(state: FleetState, rec: dict[str, Any], kiosk_id: str, now: float, lane: str) -> FleetState:
    """A late reading: the kiosk was heard (its liveness counts it), its reading stays the newer one."""
    if rec["state"] in ("stale", "unknown"):
        if lane == "shared":
            raise Decides(kiosk_id)
        _heard(state, rec, now)
        _set_state(state, rec, "online", "", now)
        state.dirty.add(kiosk_id)
    else:
        _heard(state, rec, now)
        state.fresh.add(kiosk_id)
    _count(state, "telemetry_late")
    return state


def queue_command(state: FleetState, cmd: dict[str, Any], now: float) -> tuple[FleetState, list[Outgoing]]:
    """Track a new (already signed) command; publish it at once if its kiosk is online."""
    state.commands[cmd["id"]] = cmd
    rec = state.kiosks.get(cmd["kiosk_id"])
    if rec is not None and rec["state"] == "online":
        return state, _send_queued(state, cmd["kiosk_id"], now)
    return state, []


def tick(state: FleetState, now: float) -> tuple[FleetState, list[Outgoing]]:
    """Stale kiosks, expired and timed-out commands, event alarms past their ``clear_after``,
    held conditions past their rule's hold."""
    limit = state.telemetry_period * state.stale_after_periods
    # Not hearing the broker (listening_since None): no kiosk's silence can be told from ours.
    # Otherwise only the kiosks whose watched time is old enough (controller.stale_watch).
    since = state.listening_since
    judged = now if state.heard_until is None else min(now, state.heard_until)
    for kiosk_id in state.stale_watch.due(now, limit) if since is not None else ():
        rec = state.kiosks.get(kiosk_id)
        if rec is None or rec["state"] != "online":
            continue  # watched again when it comes online
        heard = max(rec["last_seen"], since)
        if judged - heard > limit:
            _set_state(state, rec, "stale", f"no telemetry for {now - rec['last_seen']:.0f} s", now)
            state.dirty.add(kiosk_id)
        else:
            state.stale_watch.watch(kiosk_id, heard)
    for cmd in list(state.commands.values()):
        if cmd["status"] == "queued" and now >= cmd["expires_at"]:
            kiosk = state.kiosks.get(cmd["kiosk_id"], {}).get("state", "unknown")
            update = fx.CommandFinished(cmd["id"], "expired", now, f"not delivered before expiry (kiosk {kiosk})")
        elif cmd["status"] == "sent" and now >= cmd["sent_at"] + cmd["timeout"]:
            update = fx.CommandFinished(cmd["id"], "timed_out", now,
                                        f"no result within {cmd['timeout']:.0f} s of sending")
        else:
            continue
        state.effects.append(update)
        del state.commands[cmd["id"]]
    _alarm_changes(state, alarms.expired(rule_set(state), state.open_alarms, now), now)
    _alarm_changes(state, alarms.held_due(rule_set(state), state.held, state.open_alarms, now), now)
    return state, []
