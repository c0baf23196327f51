"""Security benchmark (issue 14): what an attacker's load costs everybody else.

    .venv/bin/python benchmarks/security_bench.py [--flood 20000] [--logins 40] [--json]

* service-call flood: one kiosk publishes ``--flood`` ``svc/request`` (QoS 0, as fast as paho
  sends them) to a real controller on a private Mosquitto; meanwhile another kiosk asks for a
  queue ticket every 0.2 s. Printed: that kiosk's answer times (median, worst) during the flood,
  and how many of the flood were refused ``busy`` (the kiosk's timeout is 10 s).
* sign-in storm: ``--logins`` parallel wrong-password sign-ins (scrypt each) against the console
  served by uvicorn; meanwhile ``/healthz`` is asked in a loop. Printed: its worst and median time.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import threading
import time
from pathlib import Path

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from contract import services, topics  # noqa: E402
from controller.server import Controller  # noqa: E402
from foundation.settings import ControllerConfig, from_mapping  # noqa: E402
from tests.support.broker import Mosquitto  # noqa: E402

TICKET = topics.encode(services.request("queue_ticket", "take", {"counter": "general"}))  # as the kiosk sends it


def _client(port: int, cid: str) -> mqtt.Client:
    c = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=cid, protocol=mqtt.MQTTv5)
    c.max_queued_messages_set(0)
    c.connect("127.0.0.1", port)
    c.loop_start()
    return c


def flood(tmp: Path, count: int) -> dict:
    broker = Mosquitto(tmp / "broker").start()
    ctl = Controller(from_mapping(ControllerConfig, {"broker": broker.url, "data_dir": str(tmp / "ctl")}))
    ctl.start()
    try:
        attacker, victim = _client(broker.port, "attacker"), _client(broker.port, "victim")
        answered: dict[bytes, float] = {}
        uncorrelated = [0]

        def on_answer(c: mqtt.Client, u: object, m: mqtt.MQTTMessage) -> None:
            # An answer without correlation data matches no request: counted, not a crash of paho's loop.
            corr = getattr(m.properties, "CorrelationData", None)
            if corr is None:
                uncorrelated[0] += 1
            else:
                answered.setdefault(corr, time.perf_counter())

        victim.on_message = on_answer
        victim.subscribe(topics.topic("victim", "svc/response"), 1)
        time.sleep(0.5)
        sent: dict[bytes, float] = {}
        done = threading.Event()

        def ask() -> None:
            n = 0
            while not done.is_set():
                props = Properties(PacketTypes.PUBLISH)
                props.ResponseTopic = topics.topic("victim", "svc/response")
                props.CorrelationData = corr = f"v{n}".encode()
                sent[corr] = time.perf_counter()
                victim.publish(topics.topic("victim", "svc/request"), TICKET, 1, properties=props)
                n += 1
                done.wait(0.2)

        asker = threading.Thread(target=ask)
        asker.start()
        payload = TICKET
        t0 = time.perf_counter()
        for _ in range(count):
            attacker.publish(topics.topic("attacker", "svc/request"), payload, 0)
        flood_s = time.perf_counter() - t0
        deadline = time.monotonic() + 30
        while (ctl.counts.get("received", 0) + ctl.counts.get("svc_refused:busy", 0) < count
               and time.monotonic() < deadline):
            time.sleep(0.1)
        done.set()
        asker.join()
        time.sleep(1.0)
        waits = [answered[c] - t for c, t in sent.items() if c in answered]
        return {"flood_requests": count, "flood_send_s": round(flood_s, 2),
                "victim_requests": len(sent), "victim_answered": len(waits),
                "victim_answers_without_correlation": uncorrelated[0],
                "victim_median_ms": round(statistics.median(waits) * 1000, 1) if waits else None,
                "victim_worst_ms": round(max(waits) * 1000, 1) if waits else None,
                "refused_busy": ctl.counts.get("svc_refused:busy", 0)}
    finally:
        ctl.stop()
        broker.stop()


def logins(tmp: Path, count: int) -> dict:
    import httpx

    from controller.store import Store
    from controller.web.app import build_console, create_app
    from controller.web.serve import ConsoleServer

    Store(tmp / "console").close()
    console = build_console(tmp / "console")
    console.accounts.add_user("vera", "viewer", "vera-viewer-pass")
    server = ConsoleServer(create_app(console, start_poller=False), "127.0.0.1:0")
    url = server.start()
    try:
        def sign_in() -> None:
            with httpx.Client(base_url=url, timeout=120) as c:
                c.post("/login", data={"name": "vera", "password": "wrong-password"})

        threads = [threading.Thread(target=sign_in) for _ in range(count)]
        t0 = time.perf_counter()
        for t in threads:
            t.start()
        times = []
        with httpx.Client(base_url=url, timeout=120) as c:
            while any(t.is_alive() for t in threads):
                s = time.perf_counter()
                c.get("/healthz")
                times.append(time.perf_counter() - s)
        for t in threads:
            t.join()
        return {"logins": count, "storm_s": round(time.perf_counter() - t0, 2), "healthz_samples": len(times),
                "healthz_median_ms": round(statistics.median(times) * 1000, 1) if times else None,
                "healthz_worst_ms": round(max(times) * 1000, 1) if times else None}
    finally:
        server.stop()
        console.accounts.close()


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=(__doc__ or "").split("\n")[0])
    p.add_argument("--flood", type=int, default=20_000)
    p.add_argument("--logins", type=int, default=40)
    p.add_argument("--json", action="store_true")
    args = p.parse_args(argv)
    with tempfile.TemporaryDirectory() as tmp:
        out = {"svc_flood": flood(Path(tmp) / "f", args.flood), "sign_in_storm": logins(Path(tmp) / "l", args.logins)}
    print(json.dumps(out, indent=None if args.json else 2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
