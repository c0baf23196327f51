"""``svc/request`` -> ``svc/response`` over MQTT v5 (response topic + correlation data).

Also follows what the controller pushes that the app reacts to: its presence
(``kiosk/v1/_controller/status``) and the desired config (service catalogue, mode). The app uses its
own paho client for this until the agent offers these hooks.
"""

from __future__ import annotations

import logging
import threading
import uuid
from collections.abc import Callable
from typing import Any

from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties

from controller.protocol import fleet
from controller.protocol.client import make_client
from kiosk_ui.services import ServiceRefused, ServiceUnavailable
from provisioning.errors import ProtocolError
from provisioning.settings import BrokerURL

log = logging.getLogger(__name__)


class MqttServiceClient:
    def __init__(self, broker: BrokerURL, kiosk_id: str, *,
                 on_desired: Callable[[dict[str, Any]], None] | None = None,
                 on_presence: Callable[[bool], None] | None = None,
                 ca_file: str = "", cert_file: str = "", key_file: str = "") -> None:
        self.kiosk_id = kiosk_id
        self.broker = broker
        self.on_desired = on_desired or (lambda body: None)
        self.on_presence = on_presence or (lambda online: None)
        self.response_topic = fleet.topic(kiosk_id, "svc/response")
        self._pending: dict[bytes, tuple[threading.Event, list]] = {}
        self._lock = threading.Lock()
        self._connected = threading.Event()
        self.controller_online = False
        # The kiosk's own certificate: the broker's ACL knows this kiosk by it (issue 8).
        self.client = make_client(f"kiosk-{kiosk_id}-svc", broker, ca_file=ca_file, cert_file=cert_file,
                                  key_file=key_file)
        self.client.on_connect = self._on_connect
        self.client.on_disconnect = self._on_disconnect
        self.client.on_message = self._on_message

    @property
    def online(self) -> bool:
        return self._connected.is_set() and self.controller_online

    def start(self) -> None:
        """Connect in the background: the app must come up even when the broker is down."""
        self.client.connect_async(self.broker.host, self.broker.port, keepalive=10)
        self.client.loop_start()

    def stop(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()

    def _on_connect(self, client, userdata, flags, reason_code, properties) -> None:
        if reason_code.is_failure:
            log.error("broker refused the service client: %s", reason_code)
            return
        self._connected.set()
        client.subscribe([(self.response_topic, 1), (fleet.CONTROLLER_STATUS, 1),
                          (fleet.topic(self.kiosk_id, "config/desired"), 1)])

    def _on_disconnect(self, client, userdata, flags, reason_code, properties) -> None:
        self._connected.clear()
        self._set_presence(False)

    def _set_presence(self, online: bool) -> None:
        if online != self.controller_online:
            self.controller_online = online
            self.on_presence(online)

    def _on_message(self, client, userdata, msg) -> None:
        try:
            body = fleet.decode(msg.payload)
        except ProtocolError as exc:
            log.warning("bad message ignored", extra={"fields": {"topic": msg.topic[:100], "why": str(exc)[:120]}})
            return
        if msg.topic == fleet.CONTROLLER_STATUS:
            self._set_presence(body.get("state") == "online")
        elif msg.topic.endswith("/config/desired"):
            self.on_desired(body)
        elif msg.topic == self.response_topic:
            corr = getattr(msg.properties, "CorrelationData", None)
            with self._lock:
                waiter = self._pending.get(bytes(corr)) if corr else None
            if waiter is None:
                return  # late answer to a request we gave up on
            waiter[1].append(body)
            waiter[0].set()

    def call(self, service: str, op: str, args: dict[str, Any], timeout: float = 8.0) -> dict[str, Any]:
        if not self._connected.is_set():
            raise ServiceUnavailable("not connected to the broker")
        if not self.controller_online:
            raise ServiceUnavailable("the controller is offline")
        corr = uuid.uuid4().bytes
        props = Properties(PacketTypes.PUBLISH)
        props.ResponseTopic = self.response_topic
        props.CorrelationData = corr
        done, box = threading.Event(), []
        with self._lock:
            self._pending[corr] = (done, box)
        try:
            self.client.publish(fleet.topic(self.kiosk_id, "svc/request"),
                                fleet.encode({"service": service, "op": op, "args": args}), 1, False,
                                properties=props)
            if not done.wait(timeout):
                raise ServiceUnavailable(f"no answer from the service backend within {timeout:g} s")
        finally:
            with self._lock:
                self._pending.pop(corr, None)
        reply = box[0]
        if not reply.get("ok"):
            raise ServiceRefused(str(reply.get("error", "error")), str(reply.get("message", "")))
        data = reply.get("data")
        return data if isinstance(data, dict) else {}
