"""``svc/request`` -> ``svc/response`` over MQTT v5 (response topic + correlation data).

The service client rides on the kiosk agent's connection (one MQTT connection per kiosk, so a
province's broker holds one session per kiosk, not two). The agent tells it whether the controller
is online (its retained presence, ``kiosk/v1/_controller/status``) and hands it the responses.
"""

from __future__ import annotations

import logging
import threading
import uuid
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties

from contract import services, topics
from foundation.errors import ProtocolError
from kiosk_ui.service_client import ServiceRefused, ServiceUnavailable

if TYPE_CHECKING:
    from kiosk_ui.agent.agent import KioskAgent

log = logging.getLogger(__name__)


class MqttServiceClient:
    def __init__(self, agent: KioskAgent, *, on_presence: Callable[[bool], None] | None = None) -> None:
        self.agent = agent
        self.kiosk_id = agent.config.kiosk_id
        self.on_presence = on_presence or (lambda online: None)
        self.response_topic = topics.topic(self.kiosk_id, "svc/response")
        self._pending: dict[bytes, tuple[threading.Event, list]] = {}
        self._lock = threading.Lock()
        agent.route(self.response_topic, self._on_response, topics.QOS["svc/response"])
        agent.controller_listeners.append(lambda online: self.on_presence(online))

    def watch_presence(self, listener: Callable[[bool], None]) -> None:
        """Also call ``listener`` when the controller comes or goes (on the network thread)."""
        self.agent.controller_listeners.append(listener)

    @property
    def online(self) -> bool:
        return self.agent.controller_online

    def _on_response(self, msg) -> None:
        try:
            reply = services.parse_response(topics.decode(msg.payload))
        except ProtocolError as exc:
            log.warning("bad message ignored", extra={"fields": {"topic": msg.topic[:100], "why": str(exc)[:120]}})
            return
        corr = getattr(msg.properties, "CorrelationData", None)
        with self._lock:
            waiter = self._pending.get(bytes(corr)) if corr else None
        if waiter is None:
            return  # late answer to a request we gave up on
        waiter[1].append(reply)
        waiter[0].set()

    def call(self, service: str, op: str, args: dict[str, Any], timeout: float = 8.0) -> dict[str, Any]:
        if not self.agent.connected:
            raise ServiceUnavailable("not connected to the broker")
        if not self.agent.controller_online:
            raise ServiceUnavailable("the controller is offline")
        corr = uuid.uuid4().bytes
        props = Properties(PacketTypes.PUBLISH)
        props.ResponseTopic = self.response_topic
        props.CorrelationData = corr
        done, box = threading.Event(), list[services.ServiceResponse]()
        with self._lock:
            self._pending[corr] = (done, box)
        try:
            self.agent.publish(topics.topic(self.kiosk_id, "svc/request"),
                               topics.encode(services.request(service, op, args)), topics.QOS["svc/request"],
                               properties=props)
            if not done.wait(timeout):
                raise ServiceUnavailable(f"no answer from the service backend within {timeout:g} s")
        finally:
            with self._lock:
                self._pending.pop(corr, None)
        reply = box[0]
        if not reply.ok:
            raise ServiceRefused(reply.error, reply.message)
        return reply.data
