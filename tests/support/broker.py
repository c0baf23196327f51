"""A private Mosquitto on a free loopback port, with a generated config, stopped after use."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_for_port(host: str, port: int, timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            with socket.create_connection((host, port), timeout=0.5):
                return
        except OSError:
            time.sleep(0.05)
    raise TimeoutError(f"nothing listening on {host}:{port} after {timeout} s")


@dataclass
class Mosquitto:
    """One broker process. ``extra_config`` lines are appended to the generated config."""

    workdir: Path
    port: int = 0
    extra_config: list[str] = field(default_factory=list)
    listener_config: list[str] | None = None
    proc: subprocess.Popen | None = None

    @property
    def url(self) -> str:
        return f"mqtt://127.0.0.1:{self.port}"

    def write_config(self) -> Path:
        self.workdir.mkdir(parents=True, exist_ok=True)
        if not self.port:
            self.port = free_port()
        lines = list(self.listener_config or [f"listener {self.port} 127.0.0.1", "allow_anonymous true"])
        lines += [
            "persistence true",
            f"persistence_location {self.workdir}/",
            "autosave_interval 1",
            "max_inflight_messages 0",
            "max_queued_messages 100000",
            "log_type error",
            "log_type warning",
            f"log_dest file {self.workdir / 'mosquitto.log'}",
            *self.extra_config,
        ]
        if os.geteuid() == 0 and not any(x.startswith("user ") for x in lines):
            # Started as root, Mosquitto drops to user "mosquitto", which cannot write our
            # root-owned temporary folder (log, persistence): stay root for tests.
            lines.append("user root")
        conf = self.workdir / "mosquitto.conf"
        conf.write_text("\n".join(lines) + "\n")
        return conf

    def start(self) -> Mosquitto:
        exe = shutil.which("mosquitto") or "/usr/sbin/mosquitto"
        conf = self.write_config()
        self.proc = subprocess.Popen([exe, "-c", str(conf)], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        try:
            wait_for_port("127.0.0.1", self.port)
        except TimeoutError:
            self.stop()
            raise
        return self

    def stop(self) -> None:
        if self.proc and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(5)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.proc = None

    def restart(self) -> None:
        self.stop()
        self.start()
