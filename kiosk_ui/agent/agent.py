"""The kiosk agent: birth/will/shutdown status, periodic telemetry and device summaries."""

from __future__ import annotations

import logging
import threading
import time
import uuid
from collections.abc import Callable
from typing import Any

import paho.mqtt.client as mqtt

from controller.protocol import fleet
from controller.protocol.client import connect_with_retry, make_client
from kiosk_ui.agent import telemetry
from provisioning.errors import KioskError
from provisioning.settings import KioskConfig

log = logging.getLogger(__name__)

VERSION = "0.1.0"


class KioskAgent:
    def __init__(self, config: KioskConfig, *, clock: Callable[[], float] = time.time,
                 device_status: Callable[[], dict[str, Any]] | None = None) -> None:
        self.config = config
        self.clock = clock
        self.boot_id = uuid.uuid4().hex
        self.started = time.monotonic()
        self.mode = "normal"
        self.device_status = device_status or (lambda: {})
        self._stop = threading.Event()
        self._connected = threading.Event()
        self._cpu = telemetry.cpu_times()
        c = config
        self.client = make_client(f"kiosk-{c.kiosk_id}", c.broker,
                                  ca_file=c.ca_file, cert_file=c.cert_file, key_file=c.key_file)
        self.client.will_set(self._topic("status"), fleet.encode({"state": "offline", "reason": "lwt"}), 1, True)
        self.client.on_connect = self._on_connect
        self.client.on_disconnect = self._on_disconnect

    def _topic(self, kind: str) -> str:
        return fleet.topic(self.config.kiosk_id, kind)

    def birth(self) -> dict[str, Any]:
        return {"state": "online", "mode": self.mode, "boot_id": self.boot_id, "site": self.config.site,
                "versions": {"agent": VERSION}, "devices": sorted(self.device_status())}

    def _on_connect(self, client, userdata, flags, reason_code, properties) -> None:
        if reason_code.is_failure:
            log.error("broker refused connection: %s", reason_code)
            return
        self._connected.set()
        # Retained state is re-published on every (re)connect: the broker may have lost it.
        client.publish(self._topic("status"), fleet.encode(self.birth()), 1, True)
        for name, st in self.device_status().items():
            client.publish(self._topic(f"devices/{name}"), fleet.encode(st), 1, True)
        log.info("online", extra={"fields": {"kiosk": self.config.kiosk_id}})

    def _on_disconnect(self, client, userdata, flags, reason_code, properties) -> None:
        self._connected.clear()
        if not self._stop.is_set():
            log.warning("lost broker connection: %s; reconnecting", reason_code)

    def telemetry(self) -> dict[str, Any]:
        cur = telemetry.cpu_times()
        cpu = telemetry.cpu_percent(self._cpu, cur)
        self._cpu = cur
        return {
            "ts": self.clock(),
            "uptime": round(time.monotonic() - self.started, 1),
            "cpu": cpu,
            "memory": telemetry.memory_percent(),
            "disk": telemetry.disk_percent(self.config.data_dir),
            "temperature": telemetry.soc_temperature(),
            "devices": {name: st.get("state", "unknown") for name, st in self.device_status().items()},
            "queue_depth": 0,
        }

    def start(self, say: Callable[[str], None] | None = None) -> None:
        connect_with_retry(self.client, self.config.broker, keepalive=self.config.keepalive,
                           should_stop=self._stop.is_set, say=say)
        self.client.loop_start()
        self._thread = threading.Thread(target=self._run, name="agent-telemetry", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        self._connected.wait(10)
        while not self._stop.is_set():
            if self._connected.is_set():
                try:
                    self.client.publish(self._topic("telemetry"), fleet.encode(self.telemetry()), 0, False)
                except KioskError as exc:
                    log.warning("telemetry not sent: %s", exc)
            self._stop.wait(self.config.telemetry_interval)

    def stop(self) -> None:
        """Clean stop: say ``shutdown`` (retained) so the fleet knows this was on purpose."""
        self._stop.set()
        if self._connected.is_set():
            info = self.client.publish(
                self._topic("status"),
                fleet.encode({"state": "offline", "reason": "shutdown", "boot_id": self.boot_id}), 1, True,
            )
            try:
                info.wait_for_publish(3)
            except (RuntimeError, ValueError):
                pass  # connection dropped meanwhile: the will reports offline instead
        self.client.disconnect()
        self.client.loop_stop()


def is_connected(client: mqtt.Client) -> bool:
    return client.is_connected()
