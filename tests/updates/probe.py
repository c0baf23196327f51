"""Test releases: bundles of a small real app (``kiosk-probe``) signed like real releases.

The probe carries the updater's real health reporter (kiosk_ui/updater/health.py, copied in as
``kiosk_probe.health``, stdlib only) and reports ``ready``, then ``broker`` once a real MQTT
CONNECT got its CONNACK from the broker, then ``devices``. Variants: a release that crashes on
import, and one that never reaches the broker.
"""

from __future__ import annotations

import json
import subprocess
import time
from pathlib import Path

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from contract import release as R
from kiosk_ui.updater.health import Observation, read_signals
from provisioning import release_build as B
from tests.support.processes import REPO
from tests.support.wheels import make_wheel

APP = '''
import os, socket, sys, time
from kiosk_probe import health

VERSION = "{version}"
{crash}

def _mqtt_connect(port):
    s = socket.create_connection(("127.0.0.1", port), timeout=5)
    cid = ("probe-" + VERSION).encode()
    body = b"\\x00\\x04MQTT\\x04\\x02\\x00\\x3c" + len(cid).to_bytes(2, "big") + cid
    s.sendall(bytes([0x10, len(body)]) + body)
    ack = s.recv(4)
    return s if ack[:2] == b"\\x20\\x02" and ack[3:4] == b"\\x00" else None


def main():
    hd = os.environ["KIOSK_HEALTH_DIR"]
    health.report("ready", VERSION, hd)
    conn = _mqtt_connect(int(os.environ["KIOSK_BROKER_PORT"])) if {broker} else None
    if conn is not None:
        health.report("broker", VERSION, hd)
    health.report("devices", VERSION, hd)
    print("running", VERSION, flush=True)
    while True:  # the app runs until its service stops it
        time.sleep(1)
'''


def probe_wheel(out: Path, version: str, *, crash: bool = False, broker: bool = True) -> Path:
    health_src = (REPO / "kiosk_ui" / "updater" / "health.py").read_text()
    app = APP.format(version=version, crash="raise ImportError('broken release')" if crash else "",
                     broker=broker)
    return make_wheel(out, "kiosk_probe", version, {"kiosk_probe/__init__.py": "", "kiosk_probe/health.py": health_src,
                                                   "kiosk_probe/app.py": app},
                      scripts={"kiosk-probe": "kiosk_probe.app:main"})


class Releases:
    """A root key, a release key, the key list, and a bundle per version."""

    def __init__(self, base: Path, now: int) -> None:
        self.base, self.now = base, now
        self.root, self.key = Ed25519PrivateKey.generate(), Ed25519PrivateKey.generate()
        self.key_list = json.dumps(B.build_key_list(self.root, [("rk-1", R.key_text(self.key), ["kiosk"])],
                                                    serial=1, now=now)).encode()
        self.dep = make_wheel(base / "dep", "probe_dep", "1.0.0", {"probe_dep.py": "X = 1\n" * 4000})

    def bundle(self, version: str, **kw) -> Path:
        wheels = self.base / f"wheels-{version}"
        probe_wheel(wheels, version, **kw)
        (wheels / self.dep.name).write_bytes(self.dep.read_bytes())
        out = self.base / f"bundle-{version}"
        B.build_kiosk(out, version=version, wheels=wheels, now=self.now)
        B.sign_bundle(out, self.key, "rk-1")
        return out


class Service:
    """Runs what ``current`` names, as kiosk.service does (ExecStart=/opt/kiosk/current/venv/bin/...)."""

    def __init__(self, kiosk, broker_port: int, health_dir: Path) -> None:
        self.kiosk, self.port, self.health_dir = kiosk, broker_port, health_dir
        self.proc: subprocess.Popen | None = None

    def start(self) -> None:
        self.stop()
        self.proc = subprocess.Popen([str(self.kiosk.lay.current / "venv" / "bin" / "kiosk-probe")],
                                     stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                                     env={"KIOSK_HEALTH_DIR": str(self.health_dir),
                                          "KIOSK_BROKER_PORT": str(self.port), "PATH": "/usr/bin:/bin"})

    def running_version(self, timeout: float = 10) -> str:
        """The version the live app prints. After a roll-back the watcher restarts the app just
        after it saves the result, so the process seen first may still be the crashed one."""
        deadline = time.monotonic() + timeout
        while self.proc is None or self.proc.poll() is not None:
            assert time.monotonic() < deadline, "the app was not restarted"
            time.sleep(0.05)
        assert self.proc.stdout is not None
        line = self.proc.stdout.readline().split()
        assert line[:1] == ["running"], line
        return line[1]

    def observe(self, trial) -> Observation:
        assert self.proc is not None
        code = self.proc.poll()
        return Observation(read_signals(self.health_dir, trial.version, trial.started),
                           None if code is None else f"exit status {code}")

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            self.proc.wait(10)
