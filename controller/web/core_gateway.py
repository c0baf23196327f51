"""The console's one door into the fleet controller core: alarms, events, telemetry, config, commands.

Reads go through ``controller.store_reads`` on the console's own read-only connection (so the console
works against a store even without a running Controller, as in its tests and benchmark); every
write goes through the running Controller's API, which validates, signs, audits and publishes.
Without a Controller a write is reported as :class:`Unavailable`, never faked.
"""

from __future__ import annotations

import json
import logging
import threading
from pathlib import Path
from typing import Any

from controller import audit_log, config_layers, fleet_clock, server, sql_dialect, store_reads
from controller import commands as fleet_commands
from controller.fleet_db import FleetDb
from foundation.errors import ConfigError, KioskError

log = logging.getLogger(__name__)

COMMANDS = fleet_commands.BUILT_IN
# The kiosk page's buttons: label key, command name, arguments.
BUTTONS = (
    ("cmd.print_test", "test_print", {}),
    ("cmd.restart_app", "restart_app", {}),
    ("cmd.reboot", "reboot", {}),
    ("cmd.maintenance", "set_mode", {"mode": "maintenance"}),
    ("cmd.resume", "set_mode", {"mode": "normal"}),
)
LAYERS = ("fleet", "site", "kiosk")


class Unavailable(KioskError):
    """The fleet controller core is not running here or cannot answer now."""


class NotFound(KioskError):
    """The kiosk, alarm, command or config target does not exist."""


class BadRequest(KioskError):
    """The request is not valid; the message names what was wrong."""


def scope_for(layer: str, target: str) -> str:
    if layer not in LAYERS:
        raise BadRequest(f"layer must be one of {', '.join(LAYERS)}, got {layer!r}")
    scope = "fleet" if layer == "fleet" else f"{layer}:{target}"
    try:
        return config_layers.parse_scope(scope)
    except ConfigError as exc:
        raise BadRequest(str(exc)) from None


def _alarm(a: dict[str, Any]) -> dict[str, Any]:
    return {"id": a["id"], "kiosk_id": a["kiosk_id"], "kind": a["rule"], "subject": a.get("subject", ""),
            "severity": a["severity"], "message": a.get("message", ""), "raised": a["raised_at"],
            "cleared": a.get("cleared_at"), "acked_by": a.get("acked_by"), "acked_at": a.get("acked_at"),
            "params": _alarm_params(a.get("params"))}


def _alarm_params(raw: Any) -> dict[str, Any]:
    """The rule's parameters (stored as JSON by the controller): with ``kind``, what a page translates."""
    try:
        params = json.loads(raw) if isinstance(raw, str) else {}
    except json.JSONDecodeError:
        return {}
    return params if isinstance(params, dict) else {}


class Backend:
    def __init__(self, db: FleetDb | Path, controller: Any = None) -> None:
        self.db = FleetDb.of(db)
        self.data_dir = self.db.data_dir
        self.controller = controller
        self._conn: Any = None
        self._lock = threading.Lock()

    def _read(self, fn, *args: Any, **kwargs: Any) -> Any:
        with self._lock:
            if self._conn is None:
                try:
                    self._conn = self.db.connect(readonly=True)
                except KioskError as exc:
                    raise Unavailable(str(exc)) from None
            try:
                return fn(self._conn, *args, **kwargs)
            except sql_dialect.all_errors() as exc:
                if not (isinstance(exc, sql_dialect.unavailable_errors()) or sql_dialect.missing_schema(exc)):
                    raise
                if sql_dialect.connection_lost(exc):  # PostgreSQL restarted: reconnect on the next read
                    self._conn.close()
                    self._conn = None
                raise Unavailable(f"the fleet store cannot answer: {str(exc).strip()[:300]}") from None

    def _write(self, name: str, *args: Any, **kwargs: Any) -> Any:
        fn = getattr(self.controller, name, None)
        if fn is None:
            raise Unavailable("no fleet controller is running in this process")
        try:
            return fn(*args, **kwargs)
        except ConfigError as exc:
            raise BadRequest(str(exc)) from None
        except TimeoutError:
            raise Unavailable("the fleet controller is busy; try again") from None
        except server.NotFound as exc:
            raise NotFound(str(exc)) from None

    def health(self) -> dict[str, Any]:
        c = self.controller
        if c is None:
            return {"connected": False, "inbox": 0, "rejected": 0}
        stats = c.stats() if hasattr(c, "stats") else {}
        client = getattr(c, "client", None)
        return {**stats, "connected": bool(client is not None and client.is_connected()),
                "inbox": int(stats.get("inbox", 0)), "rejected": int(stats.get("rejected", 0))}

    # -- alarms ----------------------------------------------------------------------------------
    def alarms(self, *, active: bool | None = True, kiosk_id: str | None = None, limit: int = 200
               ) -> list[dict[str, Any]]:
        res = self._read(store_reads.alarms, active=active, kiosk_id=kiosk_id, limit=limit)
        return [_alarm(a) for a in res["items"]]

    def ack_alarm(self, alarm_id: Any, actor: str, note: str = "") -> dict[str, Any]:
        try:
            num = int(alarm_id)
        except (TypeError, ValueError):
            raise BadRequest(f"alarm id must be a number, got {alarm_id!r}") from None
        done = self._write("ack_alarm", num, actor, note=note)
        return {"id": num, "acknowledged": True, "changed": bool(done)}

    # -- events and telemetry --------------------------------------------------------------------
    def events(self, kiosk_id: str, *, limit: int = 50) -> list[dict[str, Any]]:
        return self._read(store_reads.events, kiosk_id=kiosk_id, limit=limit)["items"]

    def telemetry(self, kiosk_id: str, *, since: float) -> list[dict[str, Any]]:
        return self._read(store_reads.telemetry_history, kiosk_id, since=since)

    # -- config ----------------------------------------------------------------------------------
    def config_get(self, layer: str, target: str) -> dict[str, Any]:
        scope = scope_for(layer, target)
        got = self._read(store_reads.layers).get(scope, {"version": 0, "body": {}})
        return {"scope": scope, "version": got.get("version", 0), "values": got.get("body", {}),
                "updated_by": got.get("updated_by", ""), "updated_at": got.get("updated_at")}

    def config_validate(self, values: dict[str, Any]) -> None:
        try:
            config_layers.validate_layer(values)
        except ConfigError as exc:
            raise BadRequest(str(exc)) from None

    def latest(self, kiosk_id: str) -> dict[str, Any]:
        """The kiosk's last telemetry payload, versions and groups, from the controller's record."""
        d = self._read(store_reads.kiosk_detail, kiosk_id) or {}
        return {"telemetry": d.get("telemetry") or {}, "versions": d.get("versions") or {},
                "groups": d.get("groups") or [], "boot_id": d.get("boot_id", "")}

    def config_state(self, kiosk_id: str) -> dict[str, Any] | None:
        rows = self._read(store_reads.config_diff, kiosk_id)
        if not rows:
            return None
        row = rows[0]
        kiosk = self._read(store_reads.kiosk_detail, kiosk_id) or {}
        layers = self._read(store_reads.layers)
        zone = self._read(fleet_clock.recorded).name
        _, desired = config_layers.desired_for(layers, kiosk_id, kiosk.get("site", ""), time_zone=zone)
        return {**row, "desired": desired, "reported": (self._read(_reported, kiosk_id) or {})}

    def config_set(self, layer: str, target: str, values: dict[str, Any], actor: str) -> dict[str, Any]:
        scope = scope_for(layer, target)
        self.config_validate(values)
        return {"scope": scope, "version": self._write("config_set", scope, values, actor)}

    # -- commands --------------------------------------------------------------------------------
    def send_command(self, kiosk_id: str, name: str, args: dict[str, Any], issuer: str) -> str:
        return self._write("send_command", kiosk_id, name, args, issuer)

    def command(self, command_id: str) -> dict[str, Any]:
        rec = self._read(store_reads.command, command_id)
        if rec is None:
            raise NotFound(f"no command {command_id!r}")
        return rec

    def commands(self, kiosk_id: str, *, limit: int = 20) -> list[dict[str, Any]]:
        return self._read(store_reads.commands, kiosk_id=kiosk_id, limit=limit)["items"]

    def command_outcomes(self) -> dict[str, int]:
        return self._read(lambda conn: {r[0]: r[1] for r in
                                        conn.execute("SELECT status, COUNT(*) FROM commands GROUP BY status")})

    def audit(self, *, target: str | None = None, user: str | None = None, action: str | None = None,
              offset: int = 0, limit: int = 100) -> dict[str, Any]:
        """The fleet's one audit log (``controller.audit_log``), newest first: ``total`` and ``items``."""
        return self._read(audit_log.read, target=target, user=user, action=action, offset=offset, limit=limit)


def _reported(conn: Any, kiosk_id: str) -> dict[str, Any]:
    row = conn.execute("SELECT reported FROM kiosks WHERE kiosk_id=?", (kiosk_id,)).fetchone()
    return json.loads(row[0]) if row and row[0] else {}
