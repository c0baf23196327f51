"""Fixtures for the fleet-link tests: an in-process controller and kiosk agents on the real broker."""

from __future__ import annotations

import json
import sqlite3
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path

import paho.mqtt.client as mqtt
import pytest

from controller.server import Controller
from controller.store import StoreError, connect
from foundation.backoff import Backoff
from foundation.settings import ControllerConfig, KioskConfig, from_mapping
from kiosk_ui.agent.runtime import KioskRuntime
from kiosk_ui.compose import Kiosk, build_headless_kiosk
from tests.support.processes import Proc
from tests.support.waiting import wait_until


def stored_event_ids(data_dir, kiosk_id: str | None, event_type: str) -> list[str]:
    """Ids of the events of one type (of one kiosk, or all) in a controller's database, read apart."""
    try:
        conn = connect(data_dir, readonly=True)
    except StoreError:  # the controller has not created its database yet
        return []
    try:
        return [r[0] for r in conn.execute("SELECT id FROM events WHERE type = ? AND (? IS NULL OR kiosk_id = ?)",
                                           (event_type, kiosk_id, kiosk_id))]
    except sqlite3.OperationalError:
        return []
    finally:
        conn.close()


def spawn_controller(broker, data_dir: Path, procs: list, database: str = "") -> Proc:
    """A controller in its own process (``tests.fleet.run_controller``), online when this returns."""
    ctl = Proc([sys.executable, "-m", "tests.fleet.run_controller", "--broker", broker.url, "--data-dir",
                str(data_dir), "--database", database])
    procs.append(ctl)
    ctl.wait_for("controller online", 30)
    return ctl


def controller_config(broker, data_dir: Path, **extra) -> ControllerConfig:
    return from_mapping(ControllerConfig, {"broker": broker.url, "data_dir": str(data_dir), "keepalive": 5,
                                           "client_id": f"ctl-{data_dir.name}", **extra})


@pytest.fixture
def make_controller(broker, tmp_path):
    made: list[Controller] = []

    def make(name: str = "controller", **kwargs) -> Controller:
        extra = {k: kwargs.pop(k) for k in list(kwargs) if k in ("telemetry_period", "stale_after_periods", "database")}
        c = Controller(controller_config(broker, tmp_path / name, **extra), **kwargs)
        c.start()
        made.append(c)
        assert c.wait_listening(10), "controller not subscribed within 10 s"
        return c

    yield make
    for c in made:
        if not c._stop.is_set():
            c.stop()


@pytest.fixture
def kiosk_sims() -> dict[str, dict]:
    """The simulators a ``simulated`` kiosk from ``make_kiosk`` started, by kiosk id."""
    return {}


@pytest.fixture
def make_kiosk(broker, tmp_path, kiosk_sims):
    made: list[Kiosk] = []

    def make(kiosk_id: str, public_key: str = "", *, connect: bool = True, **kwargs) -> KioskRuntime:
        cfg = {"kiosk_id": kiosk_id, "broker": broker.url, "data_dir": str(tmp_path / f"kiosk-{kiosk_id}"),
               "controller_public_key": public_key, "keepalive": 2, "site": "site-a",
               **{k: kwargs.pop(k) for k in list(kwargs) if k in ("telemetry_interval", "site", "devices", "simulated")}}
        kwargs.setdefault("backoff", Backoff(base=0.2, cap=2.0))
        kiosk, k = build_headless_kiosk(from_mapping(KioskConfig, cfg), reboot_command=("true",), **kwargs)
        made.append(kiosk)
        kiosk_sims[kiosk_id] = kiosk.sims
        k.start()
        if connect:
            wait_until(lambda: k.agent.connected, 10, f"kiosk {kiosk_id} connected")
        return k

    yield make
    for kiosk in made:
        kiosk.close()


class Raw:
    """A plain paho client for publishing what a kiosk (or an attacker) would, and for watching topics."""

    def __init__(self, broker, client_id: str = "raw") -> None:
        self.messages: list[tuple[str, bytes]] = []
        self._cond = threading.Condition()
        self.client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id=client_id, protocol=mqtt.MQTTv5)
        self.client.on_message = self._on_message
        self.client.on_subscribe = self._on_subscribe
        self._subscribed: set[int] = set()
        self.client.connect("127.0.0.1", broker.port)
        self.client.loop_start()

    def _on_message(self, client, userdata, msg) -> None:
        with self._cond:
            self.messages.append((msg.topic, msg.payload))
            self._cond.notify_all()

    def _on_subscribe(self, client, userdata, mid, reason_codes, properties) -> None:
        with self._cond:
            self._subscribed.add(mid)
            self._cond.notify_all()

    def subscribe(self, topic: str) -> None:
        """Subscribe and return once the broker acknowledged it (SUBACK)."""
        _, mid = self.client.subscribe(topic, 1)
        with self._cond:
            if not self._cond.wait_for(lambda: mid in self._subscribed, 10):
                raise AssertionError(f"no SUBACK for {topic} in 10 s")

    def publish(self, topic: str, payload: bytes | dict, qos: int = 1, retain: bool = False) -> None:
        if isinstance(payload, dict):
            payload = json.dumps(payload).encode()
        self.client.publish(topic, payload, qos, retain).wait_for_publish(5)

    def wait_json(self, predicate: Callable[[str, dict], bool], timeout: float = 10.0) -> dict:
        deadline = time.monotonic() + timeout
        seen = 0
        with self._cond:
            while True:
                for topic, payload in self.messages[seen:]:
                    try:
                        body = json.loads(payload)
                    except ValueError:
                        continue
                    if predicate(topic, body):
                        return body
                seen = len(self.messages)
                left = deadline - time.monotonic()
                if left <= 0:
                    raise AssertionError(f"no matching message in {timeout} s")
                self._cond.wait(left)

    def close(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()


@pytest.fixture
def raw(broker):
    clients: list[Raw] = []

    def make(client_id: str = "raw") -> Raw:
        r = Raw(broker, client_id)
        clients.append(r)
        return r

    yield make
    for r in clients:
        r.close()
