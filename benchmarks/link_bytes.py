"""Field-link benchmark: bytes on the wire per kiosk per day, TLS included, counted at the socket.

    .venv/bin/python benchmarks/link_bytes.py [--speed 5] [--periods 10] [--json]

Builds a real small deployment on loopback: a fleet CA (``provisioning.fleet_ca``), Mosquitto with
the generated mutual-TLS listener and ACL, the real controller (TLS, its own certificate), and one
kiosk (the real ``KioskRuntime`` and agent, its own certificate) whose connection goes through a
counting TCP proxy (``tests/support/link_proxy.py``; TLS passes through it untouched). Five devices
report the status a real kiosk's devices report (built by ``contract.device_status``).

Time is compressed by ``--speed``: telemetry every 30/speed s and keepalive 10/speed s, so every
window holds the same messages as the real one, only sooner. Each part is measured on its own:

* ``idle``: the steady state per 30-s telemetry period (telemetry, its acknowledgement, keepalive
  pings), measured over ``--periods`` periods;
* ``keepalive_only``: the same window with telemetry switched off, i.e. what the pings cost;
* ``reconnect``: a dropped connection and everything the kiosk and broker say again (TLS
  handshake, CONNECT, subscriptions, retained status/devices/config, controller presence);
* ``event``, ``device_change``, ``config_change``, ``command``: one of each, end to end.

Steady traffic inside a part's window is subtracted at the idle rate. The day is the sum of the
parts times a stated daily mix (``--reconnects``, ``--events``, ...).
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from contract import device_status  # noqa: E402
from contract.device_status import DeviceDetail  # noqa: E402
from controller.server import Controller  # noqa: E402
from foundation.settings import ControllerConfig, KioskConfig, from_mapping  # noqa: E402
from kiosk_ui.agent.runtime import KioskRuntime  # noqa: E402
from provisioning import fleet_ca, pki  # noqa: E402
from tests.support.broker import Mosquitto, free_port  # noqa: E402
from tests.support.link_proxy import LinkProxy  # noqa: E402
from tests.support.waiting import wait_until  # noqa: E402

PASSPHRASE = b"link-bench-passphrase"
DAY = 86_400
KIOSK = "GD-440106-0001"


class Devices:
    """The device statuses a kiosk with printer, two card readers, scanner and supervisor board reports."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.paper = "full"

    def __call__(self) -> dict[str, Any]:
        with self.lock:
            paper = self.paper
        return {
            "printer": device_status.build("idle", device_status.printer_detail(
                known=True, paper=paper, cover_open=False, cutter_error=False, online=True,
                unrecoverable_error=False)),
            "id_reader": device_status.build("idle", DeviceDetail(connection="connected", media="not_present")),
            "card_reader": device_status.build("idle", DeviceDetail(connection="connected", media="not_present")),
            "scanner": device_status.build("idle", DeviceDetail(connection="connected")),
            "supervisor": device_status.build("idle", device_status.supervisor_detail(
                door_open=False, tamper=False, celsius=36.5, safe_mode=False, hold_s=0)),
        }


class Deployment:
    def __init__(self, root: Path, speed: float, seed: int = 0) -> None:
        self.root = root
        self.speed = speed
        port = free_port()
        self.fleet = fleet_ca.init_fleet(root / "fleet", PASSPHRASE, hosts=["localhost", "127.0.0.1"],
                                         broker_url=f"mqtts://127.0.0.1:{port}")
        self.broker = Mosquitto(root / "broker", port=port, listener_config=self.fleet.listener(port, "127.0.0.1"),
                                extra_config=["user root"]).start()
        self.proxy = LinkProxy(port, seed=seed).start()
        self.controller = Controller(from_mapping(ControllerConfig, {
            "broker": f"mqtts://127.0.0.1:{port}", "data_dir": str(root / "controller"),
            "telemetry_period": 30.0 / speed, "keepalive": 10, "ca_file": str(self.fleet.ca_cert),
            "cert_file": str(self.fleet.controller_cert), "key_file": str(self.fleet.controller_key)}))
        self.controller.start()
        ca = fleet_ca.load_ca(self.fleet, PASSPHRASE)
        index = fleet_ca.CertIndex(self.fleet.index)
        key, cert = fleet_ca.issue_identity(ca, index, KIOSK, "tianhe-01", pki.utcnow())
        index.conn.close()
        ids = root / "kiosk"
        ids.mkdir()
        (ids / "kiosk.key.pem").write_bytes(pki.key_pem(key))
        (ids / "kiosk.crt.pem").write_bytes(pki.cert_pem(cert))
        self.kiosk_config = from_mapping(KioskConfig, {
            "kiosk_id": KIOSK, "broker": f"mqtts://127.0.0.1:{self.proxy.port}", "data_dir": str(ids / "data"),
            "site": "tianhe-01", "telemetry_interval": 30.0 / speed, "keepalive": max(1, round(10 / speed)),
            "controller_public_key": self.controller.public_key(), "ca_file": str(self.fleet.ca_cert),
            "cert_file": str(ids / "kiosk.crt.pem"), "key_file": str(ids / "kiosk.key.pem")})
        self.devices = Devices()
        self.runtime: KioskRuntime | None = None

    def start_kiosk(self) -> KioskRuntime:
        rt = KioskRuntime(self.kiosk_config)
        rt.agent.device_status = self.devices
        rt.start()
        self.runtime = rt
        return rt

    def kiosk_row(self) -> dict[str, Any]:
        return self.controller.kiosk(KIOSK) or {}

    def settled(self) -> bool:
        row, agent = self.kiosk_row(), self.runtime.agent if self.runtime else None
        return bool(agent and agent.controller_online and row.get("state") == "online"
                    and len(row.get("devices") or {}) == 5 and agent.journal.depth() == 0)

    def quiet(self, seconds: float, timeout: float = 30.0) -> None:
        """Wait until the link carried nothing but steady traffic for a moment."""
        wait_until(self.settled, timeout, "the kiosk to settle")
        time.sleep(seconds)  # benchmark pacing, not synchronisation: lets late acknowledgements pass

    def stop(self) -> None:
        if self.runtime:
            self.runtime.stop()
        self.controller.stop()
        self.proxy.stop()
        self.broker.stop()


def window(dep: Deployment, seconds: float) -> int:
    dep.proxy.reset_counts()
    time.sleep(seconds)  # a measuring window of fixed length
    c = dep.proxy.reset_counts()
    if c.connections:
        raise RuntimeError(f"the kiosk reconnected {c.connections} times in a steady window: see the broker log")
    return c.total


def part(dep: Deployment, rate: float, act, done, timeout: float = 30.0) -> dict[str, float]:
    """Bytes one action costs beyond the steady rate, from the action until ``done`` and quiet."""
    dep.proxy.reset_counts()
    t0 = time.monotonic()
    act()
    wait_until(done, timeout, "the action to complete")
    dep.quiet(1.0)
    elapsed = time.monotonic() - t0
    c = dep.proxy.reset_counts()
    return {"bytes": max(0.0, c.total - rate * elapsed), "raw": c.total, "seconds": round(elapsed, 2),
            "connections": c.connections}


def measure(speed: float, periods: int) -> dict[str, Any]:
    with tempfile.TemporaryDirectory(prefix="link-bytes-") as tmp:
        dep = Deployment(Path(tmp), speed)
        try:
            dep.proxy.reset_counts()
            rt = dep.start_kiosk()
            dep.quiet(1.0)
            first = dep.proxy.reset_counts()
            interval = 30.0 / speed
            idle = window(dep, periods * interval)
            rate = idle / (periods * interval)
            rt.agent.telemetry_interval = 10 * DAY  # pings only
            time.sleep(interval)  # the next telemetry was already scheduled; let it go
            keepalive_only = window(dep, periods * interval)
            rt.agent.telemetry_interval = interval
            out: dict[str, Any] = {
                "speed": speed, "telemetry_interval_s": 30.0, "keepalive_s": dep.kiosk_config.keepalive * speed,
                "first_connect_bytes": first.total,
                "idle_per_period": idle / periods,
                "keepalive_only_per_period": keepalive_only / periods,
                "telemetry_per_message": (idle - keepalive_only) / periods,
            }
            gen = rt.agent._gen
            out["reconnect"] = part(dep, rate, dep.proxy.drop, lambda: rt.agent._gen > gen and dep.settled())
            before = dep.controller.events(kiosk_id=KIOSK).get("total", 0)
            out["event"] = part(dep, rate, lambda: rt.agent.emit("self_test", {"result": "pass"}),
                                lambda: dep.controller.events(kiosk_id=KIOSK).get("total", 0) > before)

            def paper_low() -> None:
                with dep.devices.lock:
                    dep.devices.paper = "low"

            out["device_change"] = part(dep, rate, paper_low, lambda: (dep.kiosk_row().get("devices") or {})
                                        .get("printer", {}).get("detail", {}).get("paper") == "low")
            asked: dict[str, int] = {}
            try:
                out["config_change"] = part(
                    dep, rate, lambda: asked.update(v=dep.controller.config_set("fleet", {"volume": 60}, "bench")),
                    lambda: (dep.kiosk_row().get("config") or {}).get("reported_version") == asked["v"])
            except TimeoutError:
                print(dep.kiosk_row().get("config"), asked, file=sys.stderr)
                raise
            holder: dict[str, str] = {}
            out["command"] = part(
                dep, rate, lambda: holder.update(id=dep.controller.send_command(KIOSK, "collect_diagnostics", {}, "bench")),
                lambda: (dep.controller.command(holder["id"]) or {}).get("status") == "succeeded")
        finally:
            dep.stop()
    return out


def per_day(m: dict[str, Any], mix: dict[str, float]) -> dict[str, float]:
    periods = DAY / m["telemetry_interval_s"]
    parts = {
        "keepalive": m["keepalive_only_per_period"] * periods,
        "telemetry": m["telemetry_per_message"] * periods,
        "reconnects": m["reconnect"]["bytes"] * mix["reconnects"],
        "events": m["event"]["bytes"] * mix["events"],
        "device_changes": m["device_change"]["bytes"] * mix["device_changes"],
        "config_changes": m["config_change"]["bytes"] * mix["config_changes"],
        "commands": m["command"]["bytes"] * mix["commands"],
    }
    parts["total"] = sum(parts.values())
    return parts


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    p.add_argument("--speed", type=float, default=5.0, choices=(1.0, 2.0, 5.0, 10.0),
                   help="time compression (keepalive 10/speed s must be whole seconds; default 5)")
    p.add_argument("--periods", type=int, default=10, help="telemetry periods per steady window (10)")
    p.add_argument("--reconnects", type=float, default=4, help="reconnects per day in the mix (4)")
    p.add_argument("--events", type=float, default=50, help="events per day (50)")
    p.add_argument("--device-changes", type=float, default=10, help="device status changes per day (10)")
    p.add_argument("--config-changes", type=float, default=1, help="config changes per day (1)")
    p.add_argument("--commands", type=float, default=5, help="commands per day (5)")
    p.add_argument("--json", action="store_true", help="print JSON only")
    args = p.parse_args(argv)
    m = measure(args.speed, args.periods)
    mix = {"reconnects": args.reconnects, "events": args.events, "device_changes": args.device_changes,
           "config_changes": args.config_changes, "commands": args.commands}
    day = per_day(m, mix)
    result = {"measured": m, "mix_per_day": mix, "bytes_per_day": {k: round(v) for k, v in day.items()},
              "goal_bytes_per_day": 1_000_000, "meets_goal": day["total"] <= 1_000_000}
    if args.json:
        print(json.dumps(result, indent=2))
        return 0
    print(json.dumps(m, indent=2))
    print(f"\nper kiosk per day (mix {mix}):")
    for k, v in day.items():
        print(f"  {k:16} {v / 1000:9.1f} kB")
    print(f"goal <= 1000 kB: {'met' if result['meets_goal'] else 'NOT met'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
