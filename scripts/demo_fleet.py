"""The demo fleet: a miniature of a real deployment, built and run with the technician's tools.

Started by ``scripts/demo``. It makes a fleet with ``kiosk-provision init-fleet`` (once), runs a
private Mosquitto with the generated mutual-TLS + ACL configuration, the controller with its
client certificate serving enrolment, and kiosks enrolled with one-time tokens, so every kiosk
pins the controller's command key the way a technician's enrolment does (scripts/demo_deploy.py).
``--plain`` keeps a plain-TCP broker for development (kiosks are still enrolled, keys still pinned).
Ctrl-C stops everything cleanly (kiosks first, so each says ``shutdown``, then the controller,
then the broker). Each simulated device listens on a control socket: ``scripts/demo-fault``.
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
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import demo_deploy  # noqa: E402  (a sibling script module, not a package)

ROOT = demo_deploy.ROOT
BIN = demo_deploy.BIN
RESTART_EXIT_CODE = 75  # kiosk-agent's "restart me" (a restart_app/reboot command): start it again, as systemd would
WINDOW_ID = "GD-DEMO-WINDOW"


def port_free(port: int, host: str = "127.0.0.1") -> bool:
    with socket.socket() as s:
        # Like Mosquitto itself, ignore connections of an earlier run still in TIME_WAIT.
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            s.bind((host, port))
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
        self.argvs: dict[str, list[str]] = {}
        self.logs = self.data / "logs"
        self.exited: set[str] = set()  # children whose exit was already reported
        self.console = ""

    def spawn(self, name: str, argv: list[str]) -> subprocess.Popen:
        self.logs.mkdir(parents=True, exist_ok=True)
        log = open(self.logs / f"{name}.log", "ab")  # kept open for the child's life
        # Each child leads its own process group, so stopping it also reaches what it started
        # (a kiosk's device simulators), even if the child itself dies first.
        proc = subprocess.Popen(argv, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                env=dict(os.environ), cwd=ROOT, start_new_session=True)
        self.procs = [(n, p) for n, p in self.procs if n != name] + [(name, proc)]
        self.argvs[name] = argv
        return proc

    def kiosks(self) -> list[tuple[str, str]]:
        """(kiosk id, site) of every demo kiosk, the window last."""
        out = [(f"GD-DEMO-{i:04d}", f"demo-site-{(i - 1) % 2 + 1}") for i in range(1, self.args.kiosks + 1)]
        return out + ([(WINDOW_ID, "demo-site-1")] if self.window() else [])

    def window(self) -> bool:
        return bool(self.args.window and os.environ.get("DISPLAY"))

    def start(self) -> None:
        a = self.args
        if not port_free(a.mqtt_port):
            raise SystemExit(f"error: port {a.mqtt_port} is in use; choose another with --mqtt-port")
        host, _, port = a.http.rpartition(":")
        if port.isdigit() and int(port) and not port_free(int(port), host or "127.0.0.1"):
            raise SystemExit(f"error: {a.http} is in use; choose another console address with --http HOST:PORT")
        setup_log = self.logs / "setup.log"
        try:
            if demo_deploy.init_fleet(self.data, a.mqtt_port, setup_log):
                print(f"fleet created in {self.data} (kiosk-provision init-fleet)", flush=True)
            self.start_broker()
            self.start_controller()
            configs = self.enrol_all(setup_log)
        except demo_deploy.DemoSetupError as exc:
            raise SystemExit(f"error: {exc}") from None
        for kid, _site in self.kiosks():
            self.start_kiosk(kid, configs[kid])
        self.banner()

    @property
    def broker_url(self) -> str:
        return f"{'mqtt' if self.args.plain else 'mqtts'}://127.0.0.1:{self.args.mqtt_port}"

    def start_broker(self) -> None:
        conf = self.data / "broker" / "demo-mosquitto.conf"
        conf.write_text(demo_deploy.broker_config(self.data, self.args.mqtt_port, plain=self.args.plain,
                                                  as_root=os.geteuid() == 0))
        mosquitto = shutil.which("mosquitto") or "/usr/sbin/mosquitto"
        self.spawn("mosquitto", [mosquitto, "-c", str(conf)])
        if not wait_port(self.args.mqtt_port):
            raise SystemExit(f"error: mosquitto did not start; see {self.data / 'broker' / 'mosquitto.log'}")

    def start_controller(self) -> None:
        ctl_dir = self.data / "controller"
        proc = self.spawn("controller", [
            str(BIN / "kiosk-controller"), "--config", str(ctl_dir / "controller.toml"), "--broker", self.broker_url,
            "--data-dir", str(ctl_dir), "--http", self.args.http, "--fleet-dir", str(self.data),
            "--ca-passphrase-file", str(demo_deploy.passphrase_file(self.data)),
            "--telemetry-period", str(self.args.telemetry_interval)])
        log = self.logs / "controller.log"
        start = log.stat().st_size if log.exists() else 0
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and proc.poll() is None:
            lines = log.read_bytes()[start:].decode(errors="replace").splitlines()
            found = [x.split()[1] for x in lines if x.startswith("console http")]
            if found:
                self.console = found[0].rstrip("/")
                return
            time.sleep(0.1)
        raise SystemExit(f"error: the controller did not start its console; see {log}")

    def enrol_all(self, log: Path) -> dict[str, Path]:
        todo = self.kiosks()
        fresh = [k for k, _ in todo if not demo_deploy.enrolled(self.data / "kiosks" / k / "kiosk.toml")]
        if fresh:
            print(f"enrolling {', '.join(fresh)} with one-time tokens (kiosk-provision enroll)", flush=True)
        with ThreadPoolExecutor(max_workers=4) as pool:
            futures = {k: pool.submit(demo_deploy.enrol, self.data, k, site, self.console, log) for k, site in todo}
            return {k: f.result() for k, f in futures.items()}

    def start_kiosk(self, kid: str, config: Path) -> None:
        # The file says it, as on a real kiosk; the controller was told the same period.
        demo_deploy.set_settings(config, telemetry_interval=self.args.telemetry_interval)
        if kid == WINDOW_ID:
            self.spawn(kid, [str(BIN / "kiosk"), "--config", str(config), "--windowed", "--broker", self.broker_url])
            return
        self.spawn(kid, [str(BIN / "kiosk-agent"), "--config", str(config), "--broker", self.broker_url])

    def banner(self) -> None:
        a, ctl = self.args, self.data / "controller"
        names = [k for k, _ in self.kiosks()]
        print(f"""
Demo fleet running (logs in {self.logs}):
  broker      {self.broker_url}  ({'plain TCP, development only' if a.plain else 'mutual TLS + ACL from init-fleet'})
  controller  data in {ctl}; console {self.console}/ (enrolment served there too)
  kiosks      {', '.join(names)} (enrolled; configs in {self.data / 'kiosks'}/<id>/kiosk.toml)

Create an admin, then sign in to the console:
  .venv/bin/kioskctl --data-dir {ctl} user add admin --role admin
Look at the fleet, send a command:
  .venv/bin/kioskctl --data-dir {ctl} status
  .venv/bin/kioskctl --data-dir {ctl} command send {names[0]} test_print --wait
Cause a fault on a kiosk's simulated device:
  scripts/demo-fault {names[0]} printer '{{"cmd": "paper", "state": "out"}}'

Press Ctrl-C to stop everything.
""", flush=True)

    def check(self) -> None:
        for name, p in list(self.procs):
            if p.poll() is None or name in self.exited:
                continue
            if p.returncode == RESTART_EXIT_CODE and name in self.argvs:
                print(f"{name} restarts (fleet command)", flush=True)
                self._kill_group(p)
                self.spawn(name, self.argvs[name])
                continue
            self.exited.add(name)
            print(f"warning: {name} exited with {p.returncode}; see {self.logs / (name + '.log')}", flush=True)

    def stop(self) -> None:
        # Kiosks first (clean "shutdown" status), then controller, then the broker.
        kiosks = [x for x in self.procs if x[0] not in ("controller", "mosquitto")]
        for names in ([n for n, _ in kiosks], ["controller"], ["mosquitto"]):
            group = [(n, p) for n, p in self.procs if n in names]
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


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="scripts/demo", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--kiosks", type=int, default=3, help="number of headless simulated kiosks (default 3)")
    p.add_argument("--mqtt-port", type=int, default=int(os.environ.get("KIOSK_DEMO_MQTT_PORT", 18830)),
                   help="the private broker's port on 127.0.0.1 (default 18830)")
    p.add_argument("--http", default=os.environ.get("KIOSK_DEMO_HTTP", "127.0.0.1:8080"),
                   help="console and enrolment address HOST:PORT (default 127.0.0.1:8080)")
    p.add_argument("--data-dir", default=str(ROOT / "demo-data"), help="the demo's fleet folder (default demo-data)")
    p.add_argument("--telemetry-interval", type=float, default=30.0,
                   help="seconds between the kiosks' telemetry, written into their configs (default 30)")
    p.add_argument("--plain", action="store_true",
                   help="plain-TCP broker without TLS, for development (kiosks are still enrolled and pin the key)")
    p.add_argument("--no-window", dest="window", action="store_false", help="do not open a kiosk window")
    return p


def main(argv: list[str] | None = None) -> int:
    p = build_parser()
    args = p.parse_args(argv)
    if args.kiosks < 1:
        p.error("--kiosks must be at least 1")
    fleet = Fleet(args)
    stop = threading.Event()
    signal.signal(signal.SIGINT, lambda *_: stop.set())
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    try:
        fleet.start()
        while not stop.wait(0.5):
            fleet.check()
    finally:
        fleet.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
