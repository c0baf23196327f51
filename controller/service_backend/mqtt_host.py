"""A standalone MQTT edge for the service backend: ``python -m controller.service_backend``.

It answers ``kiosk/v1/+/svc/request`` on the request's MQTT v5 response topic with its correlation
data. The fleet controller dispatches the same requests to :func:`handle_request` itself; run this
host only where the controller does not (a separate service server, demos, tests). Its tables are
in the fleet database it is given (``controller.fleet_db``: the SQLite file of a data folder, or
PostgreSQL).
"""

from __future__ import annotations

import logging
import queue
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import paho.mqtt.client as mqtt
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties

from contract import services, topics
from contract.mqtt_client import connect_with_retry, make_client, pace_reconnects
from controller.fleet_db import FleetDb
from controller.service_backend import ensure_schema, handle_request
from foundation.backoff import controller_reconnect
from foundation.errors import ProtocolError
from foundation.settings import BrokerURL

log = logging.getLogger(__name__)
REQUESTS = f"{topics.ROOT}/+/svc/request"


def respond(client: mqtt.Client, msg: mqtt.MQTTMessage, reply: dict) -> None:
    props = getattr(msg, "properties", None)
    try:
        kiosk_id, _, _ = topics.parse_topic(msg.topic)
    except ProtocolError:
        log.warning("svc request on a bad topic dropped", extra={"fields": {"topic": msg.topic[:120]}})
        return
    target, redirected = topics.response_topic(kiosk_id, getattr(props, "ResponseTopic", None))
    if redirected:
        log.warning("svc request asked for a foreign response topic; answered on its own",
                    extra={"fields": {"topic": msg.topic[:120]}})
    out = Properties(PacketTypes.PUBLISH)
    corr = getattr(props, "CorrelationData", None)
    if corr is not None:
        out.CorrelationData = corr
    client.publish(target, topics.encode_to_kiosk(reply), *topics.FLAGS["svc/response"], properties=out)


def answer(conn, msg: mqtt.MQTTMessage, now: float) -> dict:
    """The reply for one request message (bad messages get an error reply, never silence)."""
    try:
        kiosk_id, kind, _ = topics.parse_topic(msg.topic)
        body = topics.decode(bytes(msg.payload))
    except ProtocolError as exc:
        return services.refusal("bad_request", str(exc)[:300])
    if kind != "svc/request":
        return services.refusal("bad_request", "not a service request")
    return handle_request(conn, kiosk_id, body, now)


class ServiceHost:
    def __init__(self, broker: BrokerURL, where: FleetDb | Path, *, clock: Callable[[], float] = time.time,
                 client_id: str = "kiosk-services") -> None:
        db = FleetDb.of(where)
        # PostgreSQL: the fleet registry too (the backend reads each kiosk's site from it).
        self.conn = db.open_migrated() if db.on_postgresql else db.connect()
        ensure_schema(self.conn)
        self.clock = clock
        self.broker = broker
        self.inbox: queue.Queue[mqtt.MQTTMessage] = queue.Queue()
        self._stop = threading.Event()
        self.client = make_client(client_id, broker)
        self.client.on_connect = self._on_connect
        self.client.on_subscribe = self._on_subscribe
        self.client.on_message = lambda c, u, m: self.inbox.put(m)
        # Set once the broker granted the requests' subscription on the current connection: a
        # request published before that reaches no one (``wait_listening``, as the controller's).
        self.listening = threading.Event()
        # Answering residents again within seconds of a broker restart, like the controller.
        pace_reconnects(self.client, controller_reconnect())

    def _on_connect(self, client: mqtt.Client, userdata: Any, flags: Any, reason_code: Any, properties: Any) -> None:
        if not reason_code.is_failure:
            client.subscribe(REQUESTS, topics.QOS["svc/request"])

    def _on_subscribe(self, client: mqtt.Client, userdata: Any, mid: Any, reason_codes: Any, properties: Any) -> None:
        if all(not rc.is_failure for rc in reason_codes):
            self.listening.set()

    def wait_listening(self, timeout: float) -> bool:
        """True once connected and subscribed to the kiosks' requests (within ``timeout`` seconds)."""
        return self.listening.wait(timeout)

    def start(self, say: Callable[[str], None] | None = None) -> None:
        connect_with_retry(self.client, self.broker, keepalive=10, should_stop=self._stop.is_set, say=say)
        self.client.loop_start()
        self._worker = threading.Thread(target=self._run, name="svc-worker", daemon=True)
        self._worker.start()

    def _run(self) -> None:
        # One thread owns the database connection; paho's thread only queues.
        while not self._stop.is_set():
            try:
                msg = self.inbox.get(timeout=0.2)
            except queue.Empty:
                continue
            respond(self.client, msg, answer(self.conn, msg, self.clock()))

    def stop(self) -> None:
        self._stop.set()
        if hasattr(self, "_worker"):
            self._worker.join(5)
        self.client.disconnect()
        self.client.loop_stop()
        self.conn.close()
