"""The fleet controller process: MQTT edge around the pure handlers, with SQLite persistence."""

from __future__ import annotations

import logging
import queue
import threading
import time
from collections.abc import Callable

import paho.mqtt.client as mqtt

from controller import handlers
from controller.protocol import fleet
from controller.protocol.client import connect_with_retry, make_client
from controller.store import Store
from provisioning.errors import ProtocolError
from provisioning.settings import ControllerConfig

log = logging.getLogger(__name__)

SESSION_EXPIRY = 7 * 24 * 3600  # the broker keeps our subscriptions and queued messages this long


class Controller:
    def __init__(self, config: ControllerConfig, *, clock: Callable[[], float] = time.time) -> None:
        self.config = config
        self.clock = clock
        self.store = Store(config.data_dir)
        self.state = handlers.FleetState(
            telemetry_period=config.telemetry_period, stale_after_periods=config.stale_after_periods
        )
        for rec in self.store.load_kiosks():
            self.state.kiosks[rec["kiosk_id"]] = rec
        self.inbox: queue.Queue[mqtt.MQTTMessage | None] = queue.Queue()
        self.rejected = 0
        self._stop = threading.Event()
        self.client = make_client(
            config.client_id, config.broker,
            ca_file=config.ca_file, cert_file=config.cert_file, key_file=config.key_file,
        )
        self.client.will_set(fleet.CONTROLLER_STATUS, fleet.encode({"state": "offline", "reason": "lwt"}), 1, True)
        self.client.on_connect = self._on_connect
        self.client.on_message = lambda c, u, m: self.inbox.put(m)

    def _on_connect(self, client, userdata, flags, reason_code, properties) -> None:
        if reason_code.is_failure:
            log.error("broker refused connection: %s", reason_code)
            return
        log.info("connected to broker", extra={"fields": {"session_present": flags.session_present}})
        client.subscribe(fleet.subscriptions_for_controller())
        client.publish(fleet.CONTROLLER_STATUS, fleet.encode({"state": "online", "ts": self.clock()}), 1, True)

    def start(self, say: Callable[[str], None] | None = None) -> None:
        connect_with_retry(
            self.client, self.config.broker, keepalive=self.config.keepalive, clean_start=False,
            session_expiry=SESSION_EXPIRY, should_stop=self._stop.is_set, say=say,
        )
        self.client.loop_start()
        self._worker = threading.Thread(target=self._run, name="controller-worker", daemon=True)
        self._worker.start()

    def _apply(self, msg: mqtt.MQTTMessage, now: float) -> None:
        try:
            parsed = fleet.parse(msg.topic, msg.payload)
        except ProtocolError as exc:
            self.rejected += 1
            log.warning("rejected message", extra={"fields": {"topic": msg.topic[:120], "why": str(exc)[:200]}})
            return
        self.state, out = handlers.handle(self.state, parsed, now)
        self._send(out)

    def _send(self, out: list[handlers.Outgoing]) -> None:
        for o in out:
            self.client.publish(o.topic, fleet.encode(o.body), o.qos, o.retain)

    def _persist(self) -> None:
        if self.state.dirty:
            self.store.upsert_kiosks(self.state.kiosks[k] for k in self.state.dirty)
            self.state.dirty.clear()

    def _run(self) -> None:
        next_tick = 0.0
        while not self._stop.is_set():
            try:
                msg = self.inbox.get(timeout=0.2)
            except queue.Empty:
                msg = None
            now = self.clock()
            if msg is not None:
                self._apply(msg, now)
                # Drain what is waiting so one transaction covers a burst.
                for _ in range(1000):
                    try:
                        m = self.inbox.get_nowait()
                    except queue.Empty:
                        break
                    if m is not None:
                        self._apply(m, now)
            if now >= next_tick:
                self.state, out = handlers.tick(self.state, now)
                self._send(out)
                next_tick = now + 1.0
            self._persist()

    def stop(self) -> None:
        self._stop.set()
        if hasattr(self, "_worker"):
            self._worker.join(5)
        info = self.client.publish(
            fleet.CONTROLLER_STATUS, fleet.encode({"state": "offline", "reason": "shutdown"}), 1, True
        )
        try:
            info.wait_for_publish(3)
        except (RuntimeError, ValueError):
            pass  # not connected: the will says offline for us
        self.client.disconnect()
        self.client.loop_stop()
        self._persist()
        self.store.close()
