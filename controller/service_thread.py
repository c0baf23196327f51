"""The service thread: kiosks' resident-service calls (``svc/request``) answered through the
reference backend ``controller.service_backend``, one at a time, kiosks served in turn
(``FairQueue``), on the thread's own connection to the fleet database.

Service calls skip the worker's inbox (``Controller._on_message`` puts them in the fair queue), so
one kiosk's flood cannot delay the fleet's ingest; the thread only waits for the worker when a
kiosk's first request may have overtaken its birth (``settle_worker``).
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from typing import Any

import paho.mqtt.client as mqtt
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties

from contract import services as svc_contract
from contract import topics
from controller import service_backend as services
from controller import sql_dialect
from controller.fleet_db import FleetDb, with_name
from controller.service_backend.fair_queue import FairQueue
from controller.store import connect
from foundation.errors import ProtocolError
from foundation.settings import ControllerConfig

log = logging.getLogger(__name__)

# Several instances: how long the service thread waits for a kiosk's birth that another instance
# is storing (polls of the kiosks table), before answering a first request without its site.
BIRTH_POLLS, BIRTH_POLL_SECONDS = 100, 0.05
# The service thread's PostgreSQL connection as ``pg_stat_activity`` names it (its application_name).
SERVICE_CONNECTION = "kiosk-controller-services"


class ServiceThread:
    """What the controller's ``svc`` thread runs (``serve``); the rest is the controller's: its
    queue, stop event, clock and counters, its rejection log (``reject``), its broker client
    (``ack``, ``publish``) and its worker (``call``, as ``Controller._call``)."""

    def __init__(self, config: ControllerConfig, queue: FairQueue, stop: threading.Event,
                 clock: Callable[[], float], *, count: Callable[..., None],
                 reject: Callable[[mqtt.MQTTMessage, str, float], None],
                 ack: Callable[[mqtt.MQTTMessage], None], call: Callable[..., Any],
                 publish: Callable[..., Any]) -> None:
        self.config = config
        self.queue = queue
        self.stop = stop
        self.clock = clock
        self.count = count
        self.reject = reject
        self.ack = ack
        self.call = call
        self.publish = publish
        self.birth_unseen: set[str] = set()  # kiosks the service thread waited for in vain (several instances)
        self._local = threading.local()  # the thread's own connection (``conn``)

    def serve(self) -> None:
        """The service thread: kiosks' requests in turn (``FairQueue``), one at a time."""
        while not self.stop.is_set():
            msg = self.queue.get(0.2)
            if msg is None:
                continue
            now = self.clock()
            self.count("received")
            try:
                parsed = topics.parse(msg.topic, msg.payload)
            except ProtocolError as exc:
                self.reject(msg, str(exc), now)
            else:
                self.service(msg, parsed, now)
            self.ack(msg)
        self.close_conn()

    def service(self, msg: mqtt.MQTTMessage, parsed: topics.Parsed, now: float) -> None:
        """Answer ``svc/request`` through the reference backend ``controller.service_backend``, on
        its tables in the fleet database (the SQLite store's file, or PostgreSQL)."""
        try:
            conn = self.conn()
            # The backend reads the kiosk's site from the kiosks table the worker writes.
            if not services.kiosk_site(conn, parsed.kiosk_id):
                self.settle_worker(conn, parsed.kiosk_id)
            body = services.handle_request(conn, parsed.kiosk_id, parsed.body, now)
        except sql_dialect.unavailable_errors() as exc:  # the database cannot answer now (connection lost)
            log.warning("service store unavailable", extra={"fields": {"why": str(exc)[:200]}})
            body = svc_contract.refusal("backend_unavailable", "the service store failed; try again")
        except Exception as exc:  # noqa: BLE001 - a broken backend answers an error, never kills the link
            log.exception("service backend failed")
            body = svc_contract.refusal("service_failed", str(exc)[:200])
        self.drop_broken_conn()
        self.reply(msg, parsed, body)

    def conn(self) -> Any:
        """The service thread's own connection (the backend takes one write transaction per request)."""
        if not hasattr(self._local, "svc_conn"):
            # PostgreSQL: an autocommit connection (the tables were made at start); SQLite: the
            # store's file, tables made at the first request.
            self._local.svc_conn = (
                FleetDb(self.config.data_dir, with_name(self.config.database, SERVICE_CONNECTION)).connect()
                if self.config.database else connect(self.config.data_dir, autocommit=False))
        return self._local.svc_conn

    def drop_broken_conn(self) -> None:
        """A PostgreSQL connection lost (server restarted, network, terminated): the request that
        found it gone was answered ``backend_unavailable`` (the resident may try again; retrying here
        could take a second ticket if the commit went through), the next request reconnects."""
        conn = getattr(self._local, "svc_conn", None)
        if conn is not None and getattr(getattr(conn, "raw", None), "closed", False):
            del self._local.svc_conn

    def close_conn(self) -> None:
        conn = getattr(self._local, "svc_conn", None)
        if conn is not None:
            del self._local.svc_conn
            conn.close()

    def settle_worker(self, conn: Any, kiosk_id: str) -> None:
        """Wait until the worker has committed what arrived before now. A kiosk's first request
        can reach the service thread before the worker stored its birth (another thread, another
        queue); answering it without the kiosk's site would number its ticket in nobody's queue
        and give the next resident at that centre the same number.

        With several instances the broker may have handed the birth to another instance: then
        wait (a bounded number of short polls) until the database has the kiosk's site. A kiosk
        that never gets one there is remembered, so it cannot hold the service thread again."""
        try:
            self.call(lambda store, now, out: None, timeout=5.0)
        except Exception:  # noqa: BLE001 - a busy or stopping worker: answer with what is stored
            log.warning("service request answered before the worker caught up")
        if not self.config.shared or kiosk_id in self.birth_unseen:
            return
        self.count("svc_birth_waits")
        for _ in range(BIRTH_POLLS):
            # The site, not just the row: a telemetry or device message handled by an instance
            # before the birth reached the other makes a record without one.
            if services.kiosk_site(conn, kiosk_id):
                return
            if self.stop.wait(BIRTH_POLL_SECONDS):
                return
        if len(self.birth_unseen) >= 10_000:
            self.birth_unseen.clear()
        self.birth_unseen.add(kiosk_id)
        self.count("svc_birth_unseen")
        log.warning("service request answered without the kiosk's birth in the database",
                    extra={"fields": {"kiosk": kiosk_id}})

    def reply(self, msg: mqtt.MQTTMessage, parsed: topics.Parsed, body: dict[str, Any]) -> None:
        props = getattr(msg, "properties", None)
        response_topic, redirected = topics.response_topic(parsed.kiosk_id, getattr(props, "ResponseTopic", None))
        if redirected:
            self.count("svc_response_topic_refused")
        reply = Properties(PacketTypes.PUBLISH)
        corr = getattr(props, "CorrelationData", None)
        if corr is not None:
            reply.CorrelationData = corr
        self.publish(response_topic, topics.encode_to_kiosk(body), *topics.FLAGS["svc/response"],
                            properties=reply)
