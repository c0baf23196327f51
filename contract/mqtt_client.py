"""Building and connecting paho-mqtt 2.x clients (MQTT v5) for the controller and the kiosks.

The first connection is retried with capped, jittered backoff and a one-line message per
attempt (no traceback wall); after that paho reconnects by itself, at paho's own pace (1 s
doubling to 30 s) unless ``pace_reconnects`` gives it a jittered policy.
"""

from __future__ import annotations

import logging
import ssl
import time
from collections.abc import Callable
from typing import Any

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties

from contract.mqtt_properties import share_property_tables
from contract.mqtt_reads import ReceivingClient
from foundation.backoff import Backoff
from foundation.errors import BrokerUnavailable
from foundation.settings import BrokerURL

log = logging.getLogger(__name__)


def make_client(
    client_id: str,
    broker: BrokerURL,
    *,
    ca_file: str = "",
    cert_file: str = "",
    key_file: str = "",
    manual_ack: bool = False,
    many_messages: bool = False,
) -> mqtt.Client:
    """A paho v2 MQTTv5 client; with ``manual_ack`` the caller acknowledges each QoS 1 message
    itself (``client.ack(mid, qos)``) once it is stored, so a crash before storing means redelivery.
    ``many_messages`` (a client that receives a fleet's messages): buffered reads
    (:mod:`contract.mqtt_reads`)."""
    share_property_tables()  # paho's per-packet property tables, built once (contract.mqtt_properties)
    client = (ReceivingClient if many_messages else mqtt.Client)(
        CallbackAPIVersion.VERSION2,
        client_id=client_id,
        protocol=mqtt.MQTTv5,
        manual_ack=manual_ack,
    )
    if broker.tls:
        client.tls_set(
            ca_certs=ca_file or None,
            certfile=cert_file or None,
            keyfile=key_file or None,
            cert_reqs=ssl.CERT_REQUIRED,
            tls_version=ssl.PROTOCOL_TLS_CLIENT,
        )
    client.reconnect_delay_set(min_delay=1, max_delay=30)
    return client


def failure_reason(exc: BaseException) -> str:
    """A one-line reason for a failed connect: the OS's words when there are some."""
    return getattr(exc, "strerror", None) or str(exc) or type(exc).__name__


def connect_properties(session_expiry: int = 0) -> Properties:
    props = Properties(PacketTypes.CONNECT)
    props.SessionExpiryInterval = session_expiry
    return props


def connect_with_retry(
    client: mqtt.Client,
    broker: BrokerURL,
    *,
    keepalive: int,
    clean_start: bool = True,
    session_expiry: int = 0,
    should_stop: Callable[[], bool] = lambda: False,
    backoff: Backoff | None = None,
    sleep: Callable[[float], None] = time.sleep,
    max_attempts: int | None = None,
    say: Callable[[str], None] | None = None,
) -> None:
    """Connect, retrying while the broker is unreachable; raise BrokerUnavailable if told to stop."""
    backoff = backoff or Backoff(base=0.5, cap=30.0)
    attempts = 0
    while True:
        attempts += 1
        try:
            client.connect(
                broker.host,
                broker.port,
                keepalive=keepalive,
                clean_start=clean_start,
                properties=connect_properties(session_expiry),
            )
            return
        except (TimeoutError, OSError, ssl.SSLError) as exc:
            reason = failure_reason(exc)
            if should_stop() or (max_attempts is not None and attempts >= max_attempts):
                raise BrokerUnavailable(f"broker {broker} not reachable: {reason}") from None
            delay = backoff.next_delay()
            message = f"broker {broker} not reachable: {reason}; retrying in {delay:.1f} s"
            (say or log.warning)(message)
            sleep(delay)


def pace_reconnects(client: mqtt.Client, backoff: Backoff) -> None:
    """Make paho's own reconnect loop (``loop_start``) wait ``backoff``'s jittered delays.

    paho doubles a fixed delay with no jitter. Before each of its waits it reports the lost
    connection (``on_disconnect``) or the failed attempt (``on_connect_fail``); there the next
    delay is drawn and set as paho's single delay, so its wait is exactly that. A connection the
    broker accepts starts the schedule again. Call after the client's own callbacks are set: they
    are kept and called first.
    """
    # paho types its callbacks as a union of its API versions; these clients are VERSION2 (make_client).
    on_connect: Any = client.on_connect
    on_disconnect: Any = client.on_disconnect
    on_fail: Any = client.on_connect_fail

    def next_wait() -> None:
        delay = backoff.next_delay()
        client.reconnect_delay_set(min_delay=delay, max_delay=delay)  # type: ignore[arg-type]

    def connected(c, userdata, flags, reason_code, properties) -> None:  # noqa: ANN001 - paho's signature
        if on_connect is not None:
            on_connect(c, userdata, flags, reason_code, properties)
        if not reason_code.is_failure:
            backoff.reset()

    def lost(c, userdata, flags, reason_code, properties) -> None:  # noqa: ANN001 - paho's signature
        if on_disconnect is not None:
            on_disconnect(c, userdata, flags, reason_code, properties)
        next_wait()

    def failed(c, userdata) -> None:  # noqa: ANN001 - paho's signature
        if on_fail is not None:
            on_fail(c, userdata)
        next_wait()

    client.on_connect, client.on_disconnect, client.on_connect_fail = connected, lost, failed
    next_wait()
