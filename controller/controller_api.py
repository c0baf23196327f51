"""The fleet controller's Python API: the methods of ``controller.server.Controller`` (built on
``ControllerApi``) that the web console and ``kioskctl`` use. Thread-safe.

Reads go to the store through a per-thread read-only connection (at most one worker batch,
about 0.2 s, behind the live state; a kiosk's latest telemetry reading and the telemetry history
rows up to ``effect_writes.HELD_FLUSH``, 5 s, since they are written in bulk); writes are run on
the controller's worker thread, the store's only writer, and return once committed. Bad input
raises ``ConfigError`` naming the field; an unknown alarm or command raises ``NotFound``
(``controller.server.NotFound``, defined in ``controller.operator_actions``).

Kiosks and registry
    ``list_kiosks(state=None, site=None, group=None, search=None, offset=0, limit=100)``
        -> ``{"total", "items": [summary]}``; summary: kiosk_id, state (online/offline/stale/
        unknown), reason, mode, site, boot_id, versions, last_seen, state_since, last_telemetry,
        devices {name: {state, detail, required_action, ..., available}}
    ``kiosk(kiosk_id)`` -> summary plus telemetry, groups, active alarms, recent events and
        commands, config diff; ``None`` if unknown
    ``set_group(group, kiosk_ids, add=True, user=...)``, ``set_site(site, name, region, user=...)``
Alarms
    ``alarms(active=True|False|None, kiosk_id=None, severity=None, offset=0, limit=100)``
    ``ack_alarm(alarm_id, user, note="")`` -> True (False if it was already acknowledged)
Events and telemetry
    ``events(kiosk_id=None, type=None, since=None, offset=0, limit=100)``
    ``telemetry_history(kiosk_id, since=0, until=None)`` -> downsampled rows
Desired config
    ``config_get(scope=None)`` -> all layers or one (``fleet``, ``site:NAME``, ``kiosk:ID``)
    ``config_set(scope, body, user)`` -> new version (validates: ConfigError names the key)
    ``config_diff(kiosk_id=None, only_out_of_sync=False)`` -> desired vs reported per kiosk
Commands
    ``send_command(kiosk_id, name, args, issuer, ttl=300, timeout=60, command_id=None)`` -> id
    ``command(command_id)`` -> record (status queued/sent/succeeded/failed/rejected/expired/
        timed_out, result, error); ``commands(kiosk_id=None, status=None, ...)``
    ``wait_command(command_id, timeout)`` -> the record once final (or as it is at the timeout)
Audit
    ``audit(user, action, target, result, detail=None)`` records an operator action;
    ``audit_log(user=None, action=None, offset=0, limit=100)`` reads them
Other
    ``public_key()`` (base64 Ed25519, for ``controller_public_key`` in kiosk configs), ``stats()``
"""

from __future__ import annotations

import concurrent.futures
import queue
import threading
import time
from collections.abc import Callable
from typing import Any

from contract import commands as cmd_contract
from contract import signing
from controller import commands, config_layers, handlers, operator_actions, store_pg, store_reads
from controller.effect_writes import EffectWriter
from controller.operator_actions import NotFound
from controller.service_backend.fair_queue import FairQueue
from controller.store import Store, connect
from controller.tally import Tally
from foundation.settings import ControllerConfig


class ControllerApi:
    """Reads through a per-thread read-only connection (``_ro``); writes as calls run on the
    worker (``_call``). ``Controller`` sets what is declared here in its constructor and runs the
    worker that takes the calls from ``inbox``."""

    config: ControllerConfig
    clock: Callable[[], float]
    key: Any
    state: handlers.FleetState
    tally: Tally
    counts: dict[str, int]
    inbox: queue.SimpleQueue[Any]
    svc_queue: FairQueue
    _local: threading.local  # this thread's read-only connection (``_ro``)
    # The worker side an operator action needs (``operator_actions.Worker``).
    _fresh: set[str]
    writes: EffectWriter
    _to_ack: dict[str, list[str]]

    def _call(self, fn: Callable[[Store, float, list], Any], timeout: float = 10.0,
              kiosks: tuple[str, ...] = ()) -> Any:
        """Run ``fn(store, now, out)`` on the worker inside its transaction and return its result.
        ``kiosks``: those whose transaction lock ``fn`` takes (with several instances), taken with
        the batch's own, in the one global order (``fleet_share.lock_kiosks``)."""
        fut: concurrent.futures.Future = concurrent.futures.Future()
        self.inbox.put((fn, fut, kiosks))
        return fut.result(timeout)

    def _ro(self) -> Any:
        conn = getattr(self._local, "ro", None)
        if conn is None:
            conn = self._local.ro = (store_pg.PgConnection(self.config.database, reconnect=True)
                                     if self.config.database
                                     else connect(self.config.data_dir, readonly=True))
        return conn

    def list_kiosks(self, **filters: Any) -> dict[str, Any]:
        return store_reads.list_kiosks(self._ro(), **filters)

    def kiosk(self, kiosk_id: str) -> dict[str, Any] | None:
        return store_reads.kiosk_detail(self._ro(), kiosk_id)

    def alarms(self, **filters: Any) -> dict[str, Any]:
        return store_reads.alarms(self._ro(), **filters)

    def ack_alarm(self, alarm_id: int, user: str, note: str = "") -> bool:
        return self._call(lambda store, now, out: operator_actions.ack_alarm(store, int(alarm_id), user, now, note))

    def events(self, **filters: Any) -> dict[str, Any]:
        return store_reads.events(self._ro(), **filters)

    def telemetry_history(self, kiosk_id: str, since: float = 0.0, until: float | None = None) -> list[dict]:
        return store_reads.telemetry_history(self._ro(), kiosk_id, since=since, until=until)

    def config_get(self, scope: str | None = None) -> dict[str, Any]:
        ls = store_reads.layers(self._ro())
        if scope is None:
            return ls
        scope = config_layers.parse_scope(scope)
        return ls.get(scope, {"version": 0, "body": {}})

    def config_set(self, scope: str, body: dict[str, Any], user: str) -> int:
        return self._call(lambda store, now, out: operator_actions.set_config(self, store, scope, body, user, now, out))

    def config_diff(self, kiosk_id: str | None = None, only_out_of_sync: bool = False) -> list[dict[str, Any]]:
        return store_reads.config_diff(self._ro(), kiosk_id, only_out_of_sync=only_out_of_sync)

    def send_command(self, kiosk_id: str, name: str, args: dict[str, Any] | None, issuer: str, *,
                     ttl: float = commands.DEFAULT_TTL, timeout: float = commands.DEFAULT_TIMEOUT,
                     command_id: str | None = None) -> str:
        cmd = commands.new_command(kiosk_id, name, args if args is not None else {}, issuer, self.clock(),
                                   ttl=ttl, timeout=timeout, command_id=command_id)
        return self._call(lambda store, now, out: operator_actions.queue_command(self, store, cmd, now, out),
                          kiosks=(cmd["kiosk_id"],))

    def command(self, command_id: str) -> dict[str, Any] | None:
        return store_reads.command(self._ro(), command_id)

    def commands(self, **filters: Any) -> dict[str, Any]:
        return store_reads.commands(self._ro(), **filters)

    def wait_command(self, command_id: str, timeout: float, *, poll: float = 0.05,
                     sleep: Callable[[float], None] = time.sleep) -> dict[str, Any]:
        deadline = time.monotonic() + timeout
        while True:
            rec = self.command(command_id)
            if rec is None:
                raise NotFound(f"no command {command_id}")
            if rec["status"] in commands.FINAL or time.monotonic() >= deadline:
                return rec
            sleep(poll)

    def set_group(self, group: str, kiosk_ids: list[str], add: bool = True, *, user: str) -> None:
        self._call(lambda store, now, out: operator_actions.set_group(store, group, kiosk_ids, add, user, now))

    def set_site(self, site: str, name: str = "", region: str = "", *, user: str) -> None:
        def run(store: Store, now: float, out: list) -> None:
            store.set_site(site, name, region)
            store.audit(user, "site.set", f"site:{site}", {"name": name, "region": region}, "ok", now)
        self._call(run)

    def audit(self, user: str, action: str, target: str, result: str, detail: dict[str, Any] | None = None) -> None:
        self._call(lambda store, now, out: store.audit(user, action, target, detail or {}, result, now))

    def audit_log(self, **filters: Any) -> dict[str, Any]:
        return store_reads.audit_log(self._ro(), **filters)

    def public_key(self) -> str:
        return signing.public_key_text(self.key)

    def stats(self) -> dict[str, Any]:
        with self.tally.lock:
            counts = dict(self.counts)
        return {**counts, "inbox": self.inbox.qsize(), "svc_waiting": len(self.svc_queue),
                "kiosks": len(self.state.kiosks),
                "open_alarms": len(self.state.open_alarms), "open_commands": len(self.state.commands)}

    def _sign(self, cmd: dict[str, Any]) -> Any:
        # Ed25519 signatures are deterministic: any instance signing a stored command sends the same bytes.
        return signing.sign(self.key, cmd_contract.wire_body(cmd))
