"""The fleet controller process: MQTT edge around the pure handlers, with SQLite persistence.

``Controller`` is the one object the rest of the code uses: it connects to the broker, owns the
fleet state, the store and the threads, and carries the Python API (``controller.controller_api``,
which documents it). Its parts, each in a module of its own:

- the MQTT edge (connect, subscribe, messages into the worker's inbox or the service queue,
  acknowledgements, presence) and the worker's loop (``_run``, ``_step``: one batch, one
  transaction) are here;
- ``controller.batches``: gathering, splitting and parsing a batch, and the kiosks it locks;
- ``controller.ingest``: one kiosk message applied through the handlers;
- ``controller.effect_writes``: writing what the handlers decided, and the held telemetry;
- ``controller.event_acks``: acknowledging committed events to their kiosks;
- ``controller.rejections``: counting and logging refused messages;
- ``controller.service_thread``: the ``svc`` thread answering resident-service calls;
- ``controller.operator_actions`` and ``controller.singleton_jobs``: what the worker carries out
  for operators, and the jobs (actions table, tick, retention) one controller or the lease holder runs.
"""

from __future__ import annotations

import concurrent.futures
import logging
import queue
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import paho.mqtt.client as mqtt

from contract import payloads, signing, topics, versions
from contract.mqtt_client import connect_with_retry, make_client, pace_reconnects
from controller import (
    alarms,
    batches,
    enrolment_service,
    fleet_clock,
    fleet_share,
    handlers,
    ingest,
    kiosk_sites,
    lease,
    singleton_jobs,
    sql_dialect,
    store_pg,
    store_reads,
)
from controller import service_backend as services
from controller.controller_api import ControllerApi
from controller.effect_writes import EffectWriter
from controller.event_acks import EventAcks
from controller.operator_actions import NotFound as NotFound  # re-exported: callers catch server.NotFound
from controller.rejections import Rejections
from controller.service_backend.fair_queue import FairQueue
from controller.service_thread import ServiceThread
from controller.store import Store
from controller.tally import Tally
from foundation.backoff import controller_reconnect
from foundation.errors import KioskError
from foundation.settings import ControllerConfig

log = logging.getLogger(__name__)

SESSION_EXPIRY = 7 * 24 * 3600  # the broker keeps our subscriptions and queued messages this long


class Controller(ControllerApi):
    def __init__(self, config: ControllerConfig, *, clock: Callable[[], float] = time.time,
                 signing_key: str | Path | None = None, rules_file: str | Path | None = None,
                 history_interval: float = 300.0) -> None:
        self.config = config
        self.clock = clock
        self.key = signing.load_or_create_key(config.data_dir, signing_key or config.signing_key or None)
        self.history_retention = config.history_retention_days * 86400
        self.event_retention = config.event_retention_days * 86400
        self.phone_retention = config.phone_retention_days * 86400
        self.store = Store(config.data_dir, config.database or None)
        self.sites = kiosk_sites.SiteRegistry(config.fleet_dir or None)
        # The enrolment records the site check reads, in the fleet database; the fleet folder's
        # certificate index copied there for the instances that have no copy of the folder.
        enrolment_service.ensure_schema(self.store.conn)
        self._copy_certificates()
        fleet_clock.record(self.store.conn, config.time_zone)  # kioskctl shows times in the same zone
        if config.database:
            # The service backend's tables: its requests and the hourly retention (``forget_phones``,
            # in the worker's transaction, where a missing table would fail the whole batch).
            services.ensure_schema(self.store.conn)
        self.state = handlers.FleetState(
            telemetry_period=config.telemetry_period, stale_after_periods=config.stale_after_periods,
            history_interval=history_interval, time_zone=config.time_zone,
            rules=alarms.load_rules(rules_file or config.alarm_rules or alarms.RULES_FILE),
            ordered_readings=config.shared,
        )
        self._load()
        # SimpleQueue: the C queue, several times cheaper per message than queue.Queue's locks.
        self.inbox: queue.SimpleQueue[Any] = queue.SimpleQueue()
        self.state.listening_since = None  # until connected: the liveness sweep waits (handlers.tick)
        # Counted from the worker, the MQTT thread (service calls over a kiosk's bound) and the
        # service thread; the worker's counts of a transaction are kept only if it commits.
        self.tally = Tally({"received": 0, "rejected": 0, "events_new": 0, "events_duplicate": 0})
        self.counts = self.tally.counts
        self.rejections = Rejections(self.tally)  # refused messages, counted and logged
        self.writes = EffectWriter(self.tally.add, shared=config.shared)  # the worker's writes of what was decided
        self._after_commit: list[Callable[[], None]] = []  # listeners told once the batch committed
        self._to_ack: dict[str, list[str]] = {}  # kiosk -> event ids written in the open transaction
        self.event_acks = EventAcks()  # committed, not yet acknowledged (``events/ack``)
        self._stop = threading.Event()
        self._local = threading.local()
        self.svc_queue = FairQueue()
        # Who else reads kiosks' update/state (the roll-out job): called on the ingest thread.
        self.update_listeners: list[Callable[[str, Any, float], None]] = []
        # Several instances (``instance`` set): singleton jobs only while holding the lease.
        self.lease: lease.SoleLease | lease.PgLease = (
            lease.PgLease(lambda: store_pg.PgConnection(fleet_share.with_keepalives(config.database)))
            if config.shared else lease.SoleLease())
        self._later: list[Any] = []  # the rest of a gathered batch, after its deciding messages (``_run``)
        self._fresh: set[str] = set()  # kiosks refreshed from the database in the open transaction
        self._session_kept = False  # the broker kept our persistent session at the latest connect
        self.client = make_client(
            config.mqtt_client_id, config.broker, ca_file=config.ca_file, cert_file=config.cert_file,
            key_file=config.key_file, manual_ack=True, many_messages=True,
        )
        self.client.will_set(topics.CONTROLLER_STATUS, topics.encode_to_kiosk(payloads.controller_offline("lwt")),
                             *topics.FLAGS["controller/status"])
        self.client.on_connect = self._on_connect
        self.client.on_disconnect = self._on_disconnect
        self.client.on_message = self._on_message
        self.client.on_subscribe = self._on_subscribe
        self.svc = ServiceThread(config, self.svc_queue, self._stop, clock, count=self._count,
                                 reject=self.rejections.reject, ack=self._ack_message, call=self._call,
                                 publish=lambda *a, **kw: self.client.publish(*a, **kw))  # the client of the moment
        # Set once the broker granted the kiosk topics on the current connection: from then on
        # nothing a kiosk publishes passes unheard (``wait_listening``).
        self.listening = threading.Event()
        # Back within seconds of a restarted broker, before the kiosks' ACK_WAIT sends them again.
        pace_reconnects(self.client, controller_reconnect())

    def _copy_certificates(self) -> None:
        """The fleet folder's certificate index into the fleet database, when it changed (in a
        transaction of its own, so a failed ingest batch cannot take the copy back with it)."""
        todo = self.sites.pending()
        if todo is None:
            return
        with self.store.tx() as store:
            kiosk_sites.copy_certs(store.conn, todo[1])
        self.sites.copied(*todo)

    def _load(self) -> None:
        st = self.state
        handlers.adopt(st, self.store.load_kiosks())
        for a in self.store.open_alarms():
            st.open_alarms[(a["kiosk_id"], a["rule"], a["subject"])] = a
        st.held = self.store.held_alarms()
        st.layers = store_reads.layers(self.store.conn)
        for cmd in self.store.open_commands():
            cmd["wire"] = self._sign(cmd)
            st.commands[cmd["id"]] = cmd

    # -- MQTT edge -------------------------------------------------------------------------------
    def _on_connect(self, client, userdata, flags, reason_code, properties) -> None:
        if reason_code.is_failure:
            log.error("broker refused connection: %s", reason_code)
            return
        log.info("connected to broker", extra={"fields": {"session_present": flags.session_present}})
        # The broker kept our session (and so queued what kiosks sent while we were away) only if
        # it says so: a broker restarted without persistence, or a first start, kept nothing.
        self._session_kept = bool(flags.session_present) and not self.config.shared
        # Before subscribing: the retained births and whatever waited in the session come after.
        self.state.listening_since = self.clock()
        client.subscribe(topics.subscriptions_for_controller(self.config.share_group if self.config.shared else ""))
        self._say_online()

    def _on_subscribe(self, client, userdata, mid, reason_codes, properties) -> None:
        if all(not rc.is_failure for rc in reason_codes):
            self.listening.set()
        else:
            log.error("broker refused a subscription: %s", [str(rc) for rc in reason_codes])

    def wait_listening(self, timeout: float) -> bool:
        """True once connected and subscribed (within ``timeout`` seconds)."""
        return self.listening.wait(timeout)

    def _on_disconnect(self, client, userdata, flags, reason_code, properties) -> None:
        self.listening.clear()
        self.state.listening_since = None  # deaf until the next connect: no kiosk is called stale meanwhile

    def _say_online(self) -> None:
        self.client.publish(topics.CONTROLLER_STATUS,
                            # One controller keeps a persistent session (``start``): when the broker
                            # kept it, it queued what kiosks sent while we were away. Instances of
                            # several never say so (clean sessions).
                            topics.encode_to_kiosk(payloads.controller_online(
                                self.clock(), self.config.instance, queued_while_away=self._session_kept)),
                            *topics.FLAGS["controller/status"])

    def _peer_presence(self, msg: mqtt.MQTTMessage) -> None:
        """Several instances share the one retained presence: each sets its will there, so a killed
        instance's will says "offline" while the others still serve. Whoever sees that answers
        "online" at once; the kiosks see offline then online and send again what is unacknowledged
        (what the dead instance held in flight). One controller keeps its will's word."""
        self._ack_message(msg)
        try:
            online = payloads.parse_controller_status(topics.decode(bytes(msg.payload)))
        except KioskError:
            online = False
        if not online and not self._stop.is_set():
            self._count("peer_offline_seen")
            self._say_online()

    def _on_message(self, client, userdata, msg: mqtt.MQTTMessage) -> None:
        # Service calls skip the worker's inbox: one kiosk's flood there would delay everybody's
        # answers (and the fleet's ingest) behind it. Each kiosk gets a bounded queue of its own,
        # served in turn; a request beyond its bound is dropped at once, counted and acknowledged.
        if self.config.shared and msg.topic == topics.CONTROLLER_STATUS:
            self._peer_presence(msg)
            return
        parts = msg.topic.split("/")
        if len(parts) == 5 and parts[3:] == ["svc", "request"]:
            if not self.svc_queue.put(parts[2], msg):
                self._count("svc_refused:busy")
                self._ack_message(msg)
            return
        msg.timestamp = time.monotonic()  # arrival: how far behind the worker is (``batches.caught_up``)
        self.inbox.put(msg)

    def _ack_message(self, msg: mqtt.MQTTMessage) -> None:
        if msg.qos > 0:
            self.client.ack(msg.mid, msg.qos)

    def start(self, say: Callable[[str], None] | None = None) -> None:
        # One controller keeps a persistent session: the broker queues the fleet's messages while
        # it restarts. An instance of several must not (Mosquitto would keep queueing a dead
        # member's share of a shared subscription, #1747): its session ends with its connection,
        # the others take the whole share, and the kiosks re-send what it held unacknowledged.
        shared = self.config.shared
        connect_with_retry(
            self.client, self.config.broker, keepalive=self.config.keepalive, clean_start=shared,
            session_expiry=0 if shared else SESSION_EXPIRY, should_stop=self._stop.is_set, say=say,
        )
        self.client.loop_start()
        self._worker = threading.Thread(target=self._run, name="controller-worker", daemon=True)
        self._worker.start()
        self._svc_thread = threading.Thread(target=self.svc.serve, name="svc", daemon=True)
        self._svc_thread.start()
        if self.config.shared:
            # Its own thread: taking the lease over must not wait behind a long ingest batch.
            self._lease_thread = threading.Thread(target=self._keep_lease, name="lease", daemon=True)
            self._lease_thread.start()

    def _keep_lease(self) -> None:
        while not self._stop.wait(0.2):
            self.lease.held(self.clock())

    def _count(self, name: str, n: int = 1) -> None:
        self.tally.add(name, n)

    def _send(self, out: list[handlers.Outgoing]) -> None:
        for o in out:
            body = o.body
            kiosk_id, _, kind = o.topic.removeprefix(topics.ROOT + "/").partition("/")
            if kind == "config/desired":
                # Signed at the edge (the handlers hold no key), for this kiosk only.
                body = signing.sign(self.key, {"v": versions.TO_KIOSK, **body, "kiosk_id": kiosk_id})
            self.client.publish(o.topic, topics.encode_to_kiosk(body), o.qos, o.retain)

    # -- the worker: the store's only writer ------------------------------------------------------
    def _write_effects(self, store: Store) -> None:
        self.writes.write_effects(store, self.state, self._to_ack)

    def _run(self) -> None:
        due = (0.0, 0.0, 0.0)  # when the operator actions, the tick and the pruning are next due
        busy = False  # the previous batch had messages: more are likely on their way
        # Done first, in order: a batch whose transaction lost a race with another instance's, or
        # the messages a shared-lane batch deferred (``exclusive``: then every kiosk's lock is).
        again: list[Any] = []
        exclusive = False
        later: list[Any] = []  # the rest of a gathered batch whose deciding messages went first
        while not self._stop.is_set():
            if again:
                batch, again = again, []
            elif later:
                batch, later, exclusive = later, [], False
            else:
                exclusive = False
                try:
                    first = self.inbox.get(timeout=0.1)
                except queue.Empty:
                    first = None
                batch = [first] if first is not None else []
                batches.gather(self.inbox, batch, self._stop, wait=busy)
                batch, later = batches.deciding_first(batch)
            self._later = later
            busy = bool(batch) or bool(later)
            again, exclusive, due = self._step(batch, exclusive, due)

    def _step(self, batch: list[Any], exclusive: bool,
              due: tuple[float, float, float]) -> tuple[list[Any], bool, tuple[float, float, float]]:
        """One batch in one transaction (``exclusive``: every kiosk's lock exclusive). Returns what
        to do first next (the batch again after a lost race, or the messages a shared-lane batch
        deferred), whether that takes exclusive locks, and when the jobs are next due."""
        try:
            self._copy_certificates()  # before the batch: a kiosk issued offline is filed right
        except Exception:  # noqa: BLE001 - the copy is tried again with the next batch
            log.exception("certificate index not copied to the fleet database")
        now = self.clock()
        if self.config.shared and min(due) <= now and self.lease.holder:
            # Before the batch, not after it: an operator's command is published (and stamped
            # ``issued_at``) without waiting behind up to ``batches.BATCH`` messages of telemetry.
            due = self._shared_jobs(now, due)
            now = self.clock()
        self.state.heard_until = batches.caught_up(self._later, self.inbox, batch, now, self.state.heard_until)
        out: list[handlers.Outgoing] = []
        acks: list[mqtt.MQTTMessage] = []
        calls = [item[1] for item in batch if not isinstance(item, mqtt.MQTTMessage)]
        done: list[tuple[concurrent.futures.Future, Any, Exception | None]] = []
        parsed = [batches.parse(item) for item in batch]
        try:
            tx = self.store.begin()
        except Exception:
            # Could not even start (database locked for 10 s): nothing was applied, retry the batch.
            log.exception("store busy; retrying %d items", len(batch))
            for item in batch:
                self.inbox.put(item)
            self._stop.wait(0.5)
            return [], exclusive, due
        deferred: list[Any] = []  # shared-lane messages that decide something, for the next transaction
        self.tally.open()
        self._after_commit = []
        try:
            with tx as store:
                shared: set[str] = set()
                if self.config.shared:
                    self._fresh = fleet_share.begin(self.state)
                    locks = batches.locks(batch, parsed, exclusive, handlers.rule_set(self.state))
                    fleet_share.refresh_kiosks(self.state, store.conn, locks[0], self._sign, self._fresh,
                                               shared=locks[1])
                    shared = self._lend(self._fresh)
                waiting: set[str] = set()  # kiosks with a deferred message: their later ones wait too
                for item, pre in zip(batch, parsed, strict=True):
                    if isinstance(item, mqtt.MQTTMessage):
                        kiosk = fleet_share.kiosk_of(item.topic) if shared else None
                        if kiosk in waiting or not ingest.apply(self, item, now, out, pre,
                                                                "shared" if kiosk in shared else "exclusive"):
                            waiting.add(kiosk or "")
                            deferred.append(item)
                            continue
                        acks.append(item)
                    else:
                        fn, fut, _kiosks = item
                        try:
                            done.append((fut, fn(store, now, out), None))
                        except Exception as exc:  # noqa: BLE001 - handed to the caller's thread
                            done.append((fut, None, exc))
                if self.state.dirty & shared:
                    raise RuntimeError("a kiosk locked shared was changed")  # handlers.Decides missed it
                if not self.config.shared:
                    due = singleton_jobs.jobs(self, store, now, out, due)
                self._write_effects(store)
                # Several instances decide liveness from the database's rows and reload each
                # batch's kiosks from it: there nothing is held past its own transaction.
                self.writes.write_held(store, self.state, now, flush=self.config.shared)
                self.tally.write(store.bump_counters)
        except Exception as exc:
            self.state.effects.clear()
            self._to_ack.clear()  # the kiosks keep these events and send them again
            self.tally.settle(committed=False)
            if self.config.shared:
                # The history samples go with the transaction: these kiosks are sampled again.
                self.writes.history.clear()
                for kiosk in batches.kiosks_of(batch):
                    self.state.history_bucket.pop(kiosk, None)
            if self.config.shared and sql_dialect.lost_a_race(exc):
                # Nothing was applied and every decision is read again from the database:
                # the same batch, first and in its order, rather than losing its births,
                # faults and results (telemetry and statuses are not re-sent by kiosks).
                log.warning("worker batch gave way to another instance (%s); doing it again",
                            type(exc).__name__)
                return batch, exclusive, due
            # Never ack what was not stored: the broker redelivers it after a restart.
            log.exception("worker batch failed; %d messages left unacknowledged", len(acks))
            for fut in calls:
                if not fut.done():
                    fut.set_exception(KioskError("the controller could not store this change; try again"))
            return [], False, due
        self.tally.settle(committed=True)
        for tell in self._after_commit:
            tell()
        if deferred:
            # Decided under the exclusive locks, first and in order (never an upgrade in place:
            # two instances upgrading one kiosk's shared lock would wait for each other).
            self._count("deferred", len(deferred))
        # Answer callers only once committed, so what they read next includes their change.
        for fut, value, exc in done:
            if exc is None:
                fut.set_result(value)
            else:
                fut.set_exception(exc)
        for m in acks:
            if m.qos > 0:
                self.client.ack(m.mid, m.qos)
        self._committed_events(now)
        self._ack_events(now)
        self._send(out)
        return deferred, bool(deferred), due

    def _lend(self, locked: set[str]) -> set[str]:
        """After the batch's locks: the kiosks locked shared, with the reading each was read with."""
        shared = getattr(locked, "shared", set())
        kiosks = self.state.kiosks
        self.writes.reading_bases = {k: kiosks[k]["telemetry"].get("ts") for k in shared if k in kiosks}
        self.writes.readings = {}
        return shared

    def _shared_jobs(self, now: float, due: tuple[float, float, float]) -> tuple[float, float, float]:
        """On the lease holder of several instances: the due jobs in their own transaction (``singleton_jobs``)."""
        return singleton_jobs.shared_jobs(self, now, due)

    def _committed_events(self, now: float) -> None:
        """The open transaction's events are committed: due for acknowledgement."""
        self.event_acks.committed(self._to_ack, now)

    def _ack_events(self, now: float, *, flush: bool = False) -> None:
        """Acknowledge committed events to their kiosks, gathered over ``event_acks.ACK_WINDOW``."""
        self.event_acks.send(self.client.publish, now, flush=flush)

    def stop(self) -> None:
        self._stop.set()
        if hasattr(self, "_worker"):
            self._worker.join(5)
        self._ack_events(self.clock(), flush=True)  # committed: the kiosks may let these go now
        info = self.client.publish(
            topics.CONTROLLER_STATUS, topics.encode_to_kiosk(payloads.controller_offline("shutdown")),
            *topics.FLAGS["controller/status"]
        )
        try:
            info.wait_for_publish(3)
        except (RuntimeError, ValueError):
            pass  # not connected: the will says offline for us
        self.client.disconnect()
        self.client.loop_stop()
        if hasattr(self, "_svc_thread"):
            self._svc_thread.join(5)
        with self.store.tx() as store:
            self._write_effects(store)
            self.writes.write_held(store, self.state, self.clock(), flush=True)
            self.tally.write(store.bump_counters)
        self.tally.settle(committed=True)
        self._to_ack.clear()  # disconnected already: the kiosks send these again to whoever is next
        if hasattr(self, "_lease_thread"):
            self._lease_thread.join(5)
        self.lease.close()
        self.store.close()
        self.sites.close()
