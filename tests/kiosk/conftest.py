"""Fixtures for the kiosk UI tests: the real controller, an MQTT sniffer, and the harness runner."""

from __future__ import annotations

import json
import logging
import sys
import threading
import time
from pathlib import Path

import paho.mqtt.client as mqtt
import pytest

from controller.server import Controller
from foundation.settings import ControllerConfig, from_mapping
from tests.support.processes import Proc


class Collect(logging.Handler):
    def __init__(self):
        super().__init__(logging.DEBUG)
        self.lines: list[str] = []

    def emit(self, record):
        self.lines.append(self.format(record) + " " + json.dumps(getattr(record, "fields", {}), ensure_ascii=False))


@pytest.fixture
def controller(broker, tmp_path):
    cfg = from_mapping(ControllerConfig, {"broker": broker.url, "data_dir": str(tmp_path / "controller")})
    handler = Collect()
    logging.getLogger().addHandler(handler)
    c = Controller(cfg)
    c.start()
    assert c.wait_listening(10), "controller not subscribed within 10 s"
    c.log_lines = handler.lines
    yield c
    if not getattr(c, "stopped_by_test", False):
        c.stop()
    logging.getLogger().removeHandler(handler)


@pytest.fixture
def sniffer(broker):
    """Every MQTT message on the broker during the test: (topic, payload bytes)."""
    seen: list[tuple[str, bytes]] = []
    ready = threading.Event()
    c = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id="sniffer", protocol=mqtt.MQTTv5)
    c.on_connect = lambda cl, u, f, rc, p: (cl.subscribe("#", 1), ready.set())
    c.on_message = lambda cl, u, m: seen.append((m.topic, bytes(m.payload)))
    c.connect("127.0.0.1", broker.port)
    c.loop_start()
    assert ready.wait(10)
    yield seen
    c.disconnect()
    c.loop_stop()


def kiosk_config(tmp_path: Path, broker_url: str, kiosk_id: str = "k-ui", public_key: str = "",
                 extra: str = "") -> Path:
    path = tmp_path / "kiosk.toml"
    path.write_text(f'kiosk_id = "{kiosk_id}"\nbroker = "{broker_url}"\ndata_dir = "{tmp_path / "kiosk"}"\n'
                    f'simulated = true\ntelemetry_interval = 5\ncontroller_public_key = "{public_key}"\n{extra}',
                    encoding="utf-8")
    return path


def run_harness(procs, tmp_path: Path, steps: list, *, artifacts: Path, tag: str, config: Path | None = None,
                extra: list[str] = (), screen: str = "") -> Proc:
    """``screen`` ("1920x1080"): run the app on an X server of its own with a screen that size, so
    that a window of that size fits (the suite's Xvfb screen is 1280x800)."""
    script = tmp_path / f"script-{tag}.json"
    script.write_text(json.dumps(steps, ensure_ascii=False), encoding="utf-8")
    argv = [sys.executable, "-m", "tests.kiosk.harness", "--script", str(script), "--data-dir",
            str(tmp_path / "kiosk"), "--artifacts", str(artifacts), "--tag", tag, *extra]
    if config is not None:
        argv += ["--config", str(config)]
    else:
        argv += ["--simulated"]
    if screen:
        argv = ["xvfb-run", "-a", "-s", f"-screen 0 {screen}x24 -nolisten tcp", *argv]
    p = Proc(argv)
    procs.append(p)
    return p


def finish(p: Proc, timeout: float = 150) -> None:
    line = p.wait_for(lambda s: s.startswith(("DONE", "FAIL")), timeout=timeout)
    assert line.startswith("DONE"), line + "\n" + "\n".join(p.stderr_lines[-30:])
    p.proc.wait(20)
    assert p.proc.returncode == 0, p.stderr_lines[-30:]


def wait_token(p: Proc, token: str, timeout: float = 120) -> None:
    """Wait until the harness waits at ``["sync", token]`` (fails on a harness FAIL)."""
    line = p.wait_for(lambda s: s.startswith((f"WAIT {token}", "FAIL")), timeout=timeout)
    assert line.startswith("WAIT"), line


def release(p: Proc, token: str, value: str = "") -> None:
    """Let the harness go on past ``["sync", token]`` (``value`` replaces ``$SYNC`` later)."""
    p.proc.stdin.write(f"{token} {value}\n")
    p.proc.stdin.flush()


def wait_online(controller, kiosk_id: str = "k-ui", timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while [k["state"] for k in controller.list_kiosks()["items"] if k["kiosk_id"] == kiosk_id] != ["online"]:
        assert time.monotonic() < deadline, f"kiosk {kiosk_id} not online at the controller"
        time.sleep(0.2)
