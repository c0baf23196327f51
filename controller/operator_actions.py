"""Operator actions, carried out on the controller's worker inside its open transaction: an alarm
acknowledged, a desired-config layer set, a command queued, a group changed. They come from the
Python API (``Controller.ack_alarm``, ``config_set``, ``send_command``, ``set_group``, through
``Controller._call``) and from ``kioskctl`` through the ``actions`` table (``take_actions``, run by
the singleton jobs). Each is audited, refused or done.
"""

from __future__ import annotations

import json
from typing import Any, Protocol

from contract import commands as cmd_contract
from contract import signing
from controller import commands, config_layers, fleet_share, handlers, store_reads
from controller.effect_writes import EffectWriter
from controller.store import Store
from foundation.errors import ConfigError, KioskError
from foundation.settings import ControllerConfig


class NotFound(KioskError):
    """The kiosk, alarm or command asked for does not exist."""


class Worker(Protocol):
    """What an action needs of the controller (``controller.server.Controller``): the fleet state
    it reads and replaces, and, with several instances, the kiosks it refreshes from the database."""

    state: handlers.FleetState
    config: ControllerConfig
    key: Any
    _fresh: set[str]
    writes: EffectWriter
    _to_ack: dict[str, list[str]]  # event ids written in the open transaction

    def _sign(self, cmd: dict[str, Any]) -> Any: ...


def take_actions(ctl: Worker, store: Store, actions: list[dict[str, Any]], now: float, out: list) -> None:
    """Actions queued by ``kioskctl`` in the ``actions`` table (``store.pending_actions()``)."""
    for act in actions:
        user = act["user"]
        try:
            payload = json.loads(act["payload"])
            result = do_action(ctl, store, act["kind"], payload, user, now, out)
            store.finish_action(act["id"], "done", result, now)
        except (KioskError, KeyError, TypeError, ValueError) as exc:
            msg = str(exc) if isinstance(exc, KioskError) else f"bad action payload: {exc}"
            store.finish_action(act["id"], "error", {"error": msg}, now)
            store.audit(user, act["kind"], str(act["payload"])[:120], {}, f"error: {msg}"[:300], now)


def do_action(ctl: Worker, store: Store, kind: str, p: dict[str, Any], user: str, now: float, out: list) -> Any:
    if kind == "ack":
        note = str(p.get("note", ""))[:500]
        return {"alarm_id": int(p["alarm_id"]), "acked": ack_alarm(store, int(p["alarm_id"]), user, now, note),
                "note": note}
    if kind == "config_set":
        return {"version": set_config(ctl, store, p["scope"], p["body"], user, now, out)}
    if kind == "command":
        cmd = commands.new_command(p["kiosk_id"], p["name"], p.get("args", {}), user, now,
                                   ttl=float(p.get("ttl", commands.DEFAULT_TTL)),
                                   timeout=float(p.get("timeout", commands.DEFAULT_TIMEOUT)),
                                   command_id=p.get("id"))
        return {"id": queue_command(ctl, store, cmd, now, out)}
    if kind == "group":
        set_group(store, p["group"], list(p["kiosks"]), bool(p.get("add", True)), user, now)
        return {"ok": True}
    raise ConfigError(f"unknown action {kind!r}", field="kind")


def ack_alarm(store: Store, alarm_id: int, user: str, now: float, note: str = "") -> bool:
    detail = {"note": note} if note else {}
    if not store.alarm_exists(alarm_id):
        store.audit(user, "alarm.ack", f"alarm:{alarm_id}", detail, "error: no such alarm", now)
        raise NotFound(f"no alarm {alarm_id}")
    done = store.ack_alarm(alarm_id, user, now)
    store.audit(user, "alarm.ack", f"alarm:{alarm_id}", detail, "ok" if done else "already acknowledged", now)
    return done


def set_config(ctl: Worker, store: Store, scope: str, body: Any, user: str, now: float, out: list) -> int:
    try:
        scope = config_layers.parse_scope(scope)
        config_layers.validate_layer(body)
    except ConfigError as exc:
        store.audit(user, "config.set", str(scope)[:80], {"body": body}, f"rejected: {exc}", now)
        raise
    version = store.set_layer(scope, body, user, now)
    ctl.state.layers = store_reads.layers(store.conn)
    if ctl.config.shared:
        # Only this batch's kiosks are held: the others' sites (which layers apply) are read,
        # without replacing what this transaction changed.
        for rec in store.load_kiosks():
            ctl.state.kiosks.setdefault(rec["kiosk_id"], rec)
    for kiosk_id in config_layers.affected(scope, ctl.state.kiosks):
        msg = handlers.desired_message(ctl.state, kiosk_id)
        if msg is not None:
            out.append(msg)
    store.audit(user, "config.set", scope, {"body": body, "version": version}, "ok", now)
    return version


def queue_command(ctl: Worker, store: Store, cmd: dict[str, Any], now: float, out: list) -> str:
    if ctl.config.shared:
        fleet_share.refresh_kiosks(ctl.state, store.conn, [cmd["kiosk_id"]], ctl._sign, ctl._fresh)
    if store.command_exists(cmd["id"]):
        raise ConfigError(f"command id {cmd['id']} already used", field="id")
    store.insert_command(cmd)
    cmd["wire"] = signing.sign(ctl.key, cmd_contract.wire_body(cmd))
    ctl.state, more = handlers.queue_command(ctl.state, cmd, now)
    out += more
    ctl.writes.write_effects(store, ctl.state, ctl._to_ack)
    store.audit(cmd["issuer"], "command.send", f"kiosk:{cmd['kiosk_id']}",
                {"id": cmd["id"], "name": cmd["name"], "args": cmd["args"]}, "queued", now)
    return cmd["id"]


def set_group(store: Store, group: str, kiosks: list[str], add: bool, user: str, now: float) -> None:
    if not isinstance(group, str) or not 0 < len(group) <= 64:
        raise ConfigError(f"bad group name {group!r}", field="group")
    store.set_groups(group, kiosks, add)
    store.audit(user, "group.add" if add else "group.remove", f"group:{group}", {"kiosks": kiosks}, "ok", now)


def action_kiosks(actions: list[dict[str, Any]]) -> list[str]:
    """The kiosks of the command actions among pending ``actions`` (a bad payload names none: it
    is refused when carried out)."""
    out = []
    for act in actions:
        if act["kind"] != "command":
            continue
        try:
            kiosk_id = json.loads(act["payload"]).get("kiosk_id")
        except (ValueError, AttributeError):
            continue
        if isinstance(kiosk_id, str):
            out.append(kiosk_id)
    return out
