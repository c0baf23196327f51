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


class PortTaken(RuntimeError):
    """A server exited before it listened on the free port it was given."""


def _listening_sockets(port: int) -> set[str]:
    """The sockets (``socket:[inode]``) listening on TCP ``port``, from the kernel's tables."""
    found = set()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        try:
            rows = Path(table).read_text().splitlines()[1:]
        except OSError:
            continue
        for row in rows:
            f = row.split()
            if f[3] == "0A" and int(f[1].rsplit(":", 1)[1], 16) == port:  # 0A: LISTEN
                found.add(f"socket:[{f[9]}]")
    return found


def _listens(pid: int, port: int) -> bool:
    wanted = _listening_sockets(port)
    if not wanted:
        return False
    try:
        fds = list(Path(f"/proc/{pid}/fd").iterdir())
    except OSError:
        return False
    for fd in fds:
        try:
            if os.readlink(fd) in wanted:
                return True
        except OSError:
            continue
    return False


def wait_for_listener(proc: subprocess.Popen, port: int, timeout: float = 10.0) -> None:
    """Wait until ``proc`` itself listens on ``port`` (not merely someone: another server may have
    taken a port between free_port() and the bind); PortTaken if it exits first."""
    deadline = time.monotonic() + timeout
    while not _listens(proc.pid, port):
        if proc.poll() is not None:
            raise PortTaken(f"the server for port {port} exited ({proc.returncode}) before it listened")
        if time.monotonic() > deadline:
            raise TimeoutError(f"process {proc.pid} not listening on port {port} after {timeout} s")
        time.sleep(0.05)


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
        # A port that free_port() found free can be taken before Mosquitto binds it (another
        # xdist worker's server, any process's outgoing connection): a port this broker chose
        # itself is chosen again; one the caller gave (a restart, a generated listener) is kept.
        own_port = not self.port
        for attempt in range(5):
            self._launch()
            try:
                assert self.proc is not None
                wait_for_listener(self.proc, self.port)
                return self
            except PortTaken:
                self.stop()
                if not own_port or attempt == 4:
                    raise
                self.port = 0
            except TimeoutError:
                self.stop()
                raise
        raise AssertionError("unreachable")

    def _launch(self) -> None:
        exe = shutil.which("mosquitto") or "/usr/sbin/mosquitto"
        conf = self.write_config()
        self.proc = subprocess.Popen([exe, "-c", str(conf)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)

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
