"""The demo fleet: a private Mosquitto, the controller, simulated kiosks, optionally a kiosk window.

Started by ``scripts/demo``; stops everything cleanly on Ctrl-C (kiosks first, so each says
``shutdown``, then the controller, then the broker).
"""

from __future__ import annotations

import argparse
import os
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
BIN = ROOT / ".venv" / "bin"


def port_free(port: int) -> bool:
    with socket.socket() as s:
        # Like Mosquitto itself, ignore connections of an earlier run still in TIME_WAIT.
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            s.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


def wait_port(port: int, timeout: float = 10) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                return True
        except OSError:
            time.sleep(0.1)
    return False


class Fleet:
    def __init__(self, args: argparse.Namespace) -> None:
        self.args = args
        self.data = Path(args.data_dir).resolve()
        self.procs: list[tuple[str, subprocess.Popen]] = []
        self.logs = self.data / "logs"
        self.exited: set[str] = set()  # children whose exit was already reported

    def spawn(self, name: str, argv: list[str], *, env: dict | None = None) -> subprocess.Popen:
        self.logs.mkdir(parents=True, exist_ok=True)
        log = open(self.logs / f"{name}.log", "ab")  # kept open for the child's life
        # Each child leads its own process group, so stopping it also reaches what it started
        # (a kiosk's device simulators), even if the child itself dies first.
        proc = subprocess.Popen(argv, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                env={**os.environ, **(env or {})}, cwd=ROOT, start_new_session=True)
        self.procs.append((name, proc))
        return proc

    def start(self) -> None:
        a = self.args
        broker_dir = self.data / "broker"
        broker_dir.mkdir(parents=True, exist_ok=True)
        if not port_free(a.mqtt_port):
            raise SystemExit(f"error: port {a.mqtt_port} is in use; choose another with --mqtt-port")
        conf = broker_dir / "mosquitto.conf"
        conf.write_text(
            f"listener {a.mqtt_port} 127.0.0.1\nallow_anonymous true\npersistence true\n"
            f"persistence_location {broker_dir}/\nlog_dest file {broker_dir}/mosquitto.log\n"
            # As root, Mosquitto would drop to user "mosquitto", which cannot write demo-data/.
            + ("user root\n" if os.geteuid() == 0 else "")
        )
        mosquitto = shutil.which("mosquitto") or "/usr/sbin/mosquitto"
        self.spawn("mosquitto", [mosquitto, "-c", str(conf)])
        if not wait_port(a.mqtt_port):
            raise SystemExit(f"error: mosquitto did not start; see {self.logs / 'mosquitto.log'}")
        broker = f"mqtt://127.0.0.1:{a.mqtt_port}"
        self.spawn("controller", [str(BIN / "kiosk-controller"), "--broker", broker,
                                  "--data-dir", str(self.data / "controller"), "--http", a.http])
        for i in range(1, a.kiosks + 1):
            kid = f"GD-DEMO-{i:04d}"
            self.spawn(kid, [str(BIN / "kiosk-agent"), "--kiosk-id", kid, "--broker", broker, "--simulated",
                             "--site", f"demo-site-{(i - 1) % 2 + 1}", "--data-dir", str(self.data / "kiosks" / kid),
                             "--telemetry-interval", str(a.telemetry_interval)])
        if a.window and os.environ.get("DISPLAY"):
            self.spawn("kiosk-window", [str(BIN / "kiosk"), "--kiosk-id", "GD-DEMO-WINDOW", "--simulated",
                                        "--windowed", "--broker", broker,
                                        "--data-dir", str(self.data / "kiosks" / "GD-DEMO-WINDOW")])
        print(f"""
Demo fleet running (logs in {self.logs}):
  broker      {broker}  (private Mosquitto, data in {broker_dir})
  controller  data in {self.data / 'controller'}; console http://{a.http}/ (when the console is built)
  kiosks      {a.kiosks} simulated kiosks GD-DEMO-0001..{a.kiosks:04d} (kiosk-agent --simulated)

Look at the fleet:
  .venv/bin/kioskctl --data-dir {self.data / 'controller'} status

Press Ctrl-C to stop everything.
""", flush=True)

    def check(self) -> None:
        for name, p in self.procs:
            if p.poll() is not None and name not in self.exited:
                self.exited.add(name)
                print(f"warning: {name} exited with {p.returncode}; see {self.logs / (name + '.log')}", flush=True)

    def stop(self) -> None:
        # Kiosks first (clean "shutdown" status), then controller, then the broker.
        order = [x for x in self.procs if x[0] not in ("controller", "mosquitto")]
        order += [x for x in self.procs if x[0] == "controller"] + [x for x in self.procs if x[0] == "mosquitto"]
        for group in (order[:-2], order[-2:-1], order[-1:]):
            for _, p in group:
                if p.poll() is None:
                    p.terminate()
            for name, p in group:
                try:
                    p.wait(15)
                except subprocess.TimeoutExpired:
                    print(f"warning: {name} did not stop within 15 s; killing it", flush=True)
                self._kill_group(p)
        print("demo fleet stopped", flush=True)

    @staticmethod
    def _kill_group(p: subprocess.Popen) -> None:
        """Stop whatever is left in the child's process group (orphaned simulators)."""
        for sig in (signal.SIGTERM, signal.SIGKILL):
            try:
                os.killpg(p.pid, sig)
            except ProcessLookupError:
                break
            time.sleep(0.5)
        if p.poll() is None:
            p.wait(5)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="scripts/demo", description=__doc__)
    p.add_argument("--kiosks", type=int, default=3, help="number of simulated kiosks (default 3)")
    p.add_argument("--mqtt-port", type=int, default=int(os.environ.get("KIOSK_DEMO_MQTT_PORT", 18830)))
    p.add_argument("--http", default=os.environ.get("KIOSK_DEMO_HTTP", "127.0.0.1:8080"))
    p.add_argument("--data-dir", default=str(ROOT / "demo-data"))
    p.add_argument("--telemetry-interval", type=float, default=30.0)
    p.add_argument("--no-window", dest="window", action="store_false", help="do not open a kiosk window")
    args = p.parse_args(argv)
    if args.kiosks < 1:
        p.error("--kiosks must be at least 1")
    fleet = Fleet(args)
    stop = threading.Event()
    signal.signal(signal.SIGINT, lambda *_: stop.set())
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    try:
        fleet.start()
        while not stop.wait(1):
            fleet.check()
    finally:
        fleet.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
