"""Light simulated kiosks: many kiosks driven by one thread, each with the product's event path.

A whole ``KioskAgent`` is four threads and a journal; 1,000 of them on two cores starve (load
average 60-210 in the fail-over benchmark), miss their keepalives and wait out doubled re-send
waits, so the benchmark measured its own load generator. Each kiosk here keeps what the fleet
link's events depend on and drops the threads:

* one MQTT v5 connection of its own (``contract.mqtt_client.make_client``, client id
  ``kiosk-<id>``, clean start, the agent's keepalive and reconnect backoff), the agent's will with a
  connection stamp (``payloads.offline``, ``payloads.connection_stamp``), the agent's
  subscriptions (``topics.subscriptions_for_kiosk``: events/ack and the controller's presence
  among them), a birth (``payloads.birth``) on every connect and on the controller's return, a
  full telemetry snapshot every ``telemetry_interval`` (``payloads.telemetry``);
* a real SQLite journal (``kiosk_ui.agent.journal.Journal``) and the agent's own sending side
  (``kiosk_ui.agent.event_sender``: journaling, PUBACKs, ``events/ack``, the re-send rule), pumped
  when something happened and every 0.5 s, as the agent's sender thread does.

Left out: devices, desired config and commands (the fail-over benchmark sends none). One selector
loop (``LightFleet.step``) drives every kiosk of a process, as ``reconnect_storm.py`` does.
"""

from __future__ import annotations

import random
import selectors
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

import paho.mqtt.client as mqtt

from contract import payloads
from contract import topics as fleet
from contract.mqtt_client import make_client
from foundation.backoff import Backoff
from foundation.errors import KioskError
from foundation.settings import BrokerURL
from kiosk_ui.agent import resend_rule
from kiosk_ui.agent.event_sender import EventSender, journal_event
from kiosk_ui.agent.journal import Journal

SENDER_WAKE = 0.5  # the agent's sender thread wakes at least this often (timed re-sends)
MISC_EVERY = 1.0  # keepalive pings and their time-outs (paho's loop_misc)
SCAN_EVERY = 0.1  # closed connections noticed, reconnects made


class LightKiosk:
    """One simulated kiosk; every method runs on its fleet's one thread."""

    def __init__(self, kiosk_id: str, broker: BrokerURL, data_dir: Path, *, keepalive: int = 5,
                 ack_wait: float, max_events: int = 100_000, telemetry_interval: float = 30.0,
                 clock: Callable[[], float] = time.time, monotonic: Callable[[], float] = time.monotonic,
                 rand: Callable[[], float] = random.random) -> None:
        self.kiosk_id = kiosk_id
        self.broker = broker
        self.keepalive = keepalive
        self.clock = clock
        self.monotonic = monotonic
        self.boot_id = uuid.uuid4().hex
        self.started = monotonic()
        self.journal = Journal(data_dir / "agent-journal.sqlite3", max_events=max_events)
        self.client = make_client(f"kiosk-{kiosk_id}", broker)
        self.sender = EventSender(self.journal, lambda t, p: self.client.publish(t, p, *fleet.FLAGS["events"]),
                                  ack_wait=ack_wait, monotonic=monotonic)
        self.backoff = Backoff(base=0.5, cap=5.0, rand=rand)
        self.telemetry_interval = telemetry_interval
        self.next_telemetry = monotonic() + rand() * telemetry_interval  # spread, not in step
        self.connected = False
        self.presence: bool | None = None  # the controller's, as read on this connection
        self.gen = 0
        self.seq = 0
        self.stamp: int | None = None
        self.retry_at = 0.0
        self.woken = True
        self._configured = False  # connect_async done (host, port, keepalive, clean start)
        self.ignored = 0  # messages for parts this kiosk leaves out (desired config, commands)
        self.client.on_connect = self._on_connect
        self.client.on_disconnect = self._on_disconnect
        self.client.on_publish = self._on_publish
        self.client.on_message = self._on_message

    def connect(self) -> None:
        """Connect (first time) or reconnect with a new connection stamp in the will, as the agent does."""
        self.stamp = payloads.connection_stamp(self.clock(), self.stamp)
        self.client.will_set(fleet.topic(self.kiosk_id, "status"),
                             fleet.encode(payloads.offline(self.kiosk_id, self.boot_id, "lwt", self.stamp)),
                             *fleet.FLAGS["status"])
        if not self._configured:
            self.client.connect_async(self.broker.host, self.broker.port, keepalive=self.keepalive, clean_start=True)
            self._configured = True
        self.client.reconnect()

    def emit(self, event_type: str, fields: dict[str, Any]) -> str:
        event_id = uuid.uuid4().hex
        self.seq += 1
        journal_event(self.journal, self.kiosk_id, event_id=event_id, boot_id=self.boot_id, seq=self.seq,
                      ts=self.clock(), type=event_type, fields=fields)
        self.woken = True
        return event_id

    def _birth(self) -> None:
        self.client.publish(fleet.topic(self.kiosk_id, "status"), fleet.encode(payloads.birth(
            self.kiosk_id, mode="normal", boot_id=self.boot_id, site="", versions={"agent": "light"},
            devices=[], ts=self.clock(), stamp=self.stamp)), *fleet.FLAGS["status"])

    def _on_connect(self, client, userdata, flags, reason_code, properties) -> None:
        if reason_code.is_failure:
            return
        self.backoff.reset()
        self.gen += 1
        self.presence = None
        self.connected = True
        client.subscribe(fleet.subscriptions_for_kiosk(self.kiosk_id))
        self._birth()
        self.next_telemetry = self.monotonic()
        self.woken = True

    def _on_disconnect(self, client, userdata, flags, reason_code, properties) -> None:
        self.connected = False
        self.presence = None
        self.retry_at = self.monotonic() + self.backoff.next_delay()

    def _on_publish(self, client, userdata, mid, reason_code, properties) -> None:
        self.sender.puback(mid)
        self.woken = True

    def _on_message(self, client, userdata, msg: mqtt.MQTTMessage) -> None:
        if msg.topic == fleet.topic(self.kiosk_id, "events/ack"):
            try:
                self.sender.committed(payloads.parse_events_ack(fleet.decode(bytes(msg.payload))))
            except KioskError:
                return
        elif msg.topic == fleet.CONTROLLER_STATUS:
            try:
                body = fleet.decode(bytes(msg.payload))
                online = payloads.parse_controller_status(body)
            except KioskError:
                return
            previous, self.presence = self.presence, online
            if resend_rule.came_back(previous, online):
                self._birth()  # the agent tells a returning controller its retained state again
                self.next_telemetry = self.monotonic()
            self.sender.presence(previous, online, body)
        else:
            self.ignored += 1
        self.woken = True

    def pump(self) -> None:
        self.woken = False
        self.sender.pump(gen=self.gen, connected=self.connected, presence=self.presence)

    def send_telemetry(self, now: float) -> None:
        self.next_telemetry = now + self.telemetry_interval
        self.client.publish(fleet.topic(self.kiosk_id, "telemetry"), fleet.encode(payloads.telemetry(
            self.kiosk_id, ts=self.clock(), uptime=now - self.started, cpu=None, memory=None, disk=None,
            temperature=None, enclosure_temperature=None, devices={}, queue_depth=self.journal.depth(),
            mode="normal")), *fleet.FLAGS["telemetry"])

    def say_shutdown(self) -> None:
        if self.connected:
            self.client.publish(fleet.topic(self.kiosk_id, "status"), fleet.encode(
                payloads.offline(self.kiosk_id, self.boot_id, "shutdown", self.stamp)), *fleet.FLAGS["status"])


class LightFleet:
    """Every kiosk of one process on one selector loop: call :meth:`step` over and over."""

    def __init__(self, kiosks: list[LightKiosk], *, monotonic: Callable[[], float] = time.monotonic) -> None:
        self.kiosks = kiosks
        self.monotonic = monotonic
        self.sel = selectors.DefaultSelector()
        self.registered: dict[LightKiosk, Any] = {}
        self.next_misc = self.next_wake = self.next_scan = 0.0

    def step(self, timeout: float) -> None:
        """Wait up to ``timeout`` for the broker, then do what is due. Only kiosks that something
        happened to are visited each step; the whole fleet every ``SCAN_EVERY`` (connections),
        ``SENDER_WAKE`` (the sender's timed round) and ``MISC_EVERY`` (keepalive, telemetry)."""
        touched = {key.data for key, _ in self.sel.select(timeout)}
        for k in touched:
            k.client.loop_read(100)
        now = self.monotonic()
        if now >= self.next_scan:
            self.next_scan = now + SCAN_EVERY
            self._scan(now)
        every = now >= self.next_wake  # the sender's timed round: every kiosk is pumped
        if every:
            self.next_wake = now + SENDER_WAKE
        if now >= self.next_misc:
            self.next_misc = now + MISC_EVERY
            for k in self.kiosks:
                if k.client.socket() is not None:
                    k.client.loop_misc()
                if k.connected and now >= k.next_telemetry:
                    k.send_telemetry(now)
        for k in self.kiosks:
            if every or k.woken:
                k.pump()
            elif k not in touched:
                continue
            if k.client.socket() is not None and k.client.want_write():
                k.client.loop_write()

    def _scan(self, now: float) -> None:
        """Closed sockets out of the selector, due reconnects made, new sockets in."""
        for k in self.kiosks:
            sock = k.client.socket()
            old = self.registered.get(k)
            if old is not None and sock is not old:
                self._forget(self.registered.pop(k))  # closed: its number may come back for another
            if sock is None and not k.connected and now >= k.retry_at:
                try:
                    k.connect()
                except OSError:
                    k.retry_at = now + k.backoff.next_delay()
                    continue
                sock = k.client.socket()
            if sock is not None and k not in self.registered:
                self._forget(sock)
                self.sel.register(sock, selectors.EVENT_READ, k)
                self.registered[k] = sock

    def stop(self) -> None:
        """Clean stop: each kiosk says ``shutdown`` (retained), then disconnects; journals close."""
        for k in self.kiosks:
            k.say_shutdown()
        deadline = self.monotonic() + 5
        while self.monotonic() < deadline and any(k.client.want_write() for k in self.kiosks if k.client.socket()):
            self.step(0.01)
        for k in self.kiosks:
            k.client.disconnect()
            k.journal.close()

    def _forget(self, sock: Any) -> None:
        try:
            self.sel.unregister(sock)
        except (KeyError, ValueError):
            pass
