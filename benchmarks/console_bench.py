"""Operator console at province scale: 26,412 kiosks in the registry.

    .venv/bin/python benchmarks/console_bench.py [--kiosks 26412] [--requests 200] [--events 20] [--json]

1. Fleet page first render: the console starts on a store of N kiosks (its poller reads every
   kiosk once), then ``GET /fleet`` over real HTTP with a session: the first request after start
   and the distribution over repeated requests (server time to the full HTML). With Chromium
   available, also navigation to ``load`` in a real browser. Target: within 1 s.
2. Filtered API list: ``GET /api/v1/kiosks`` with a mix of status, site, search, sort and page
   filters over real HTTP with an API token; p50/p95/max. Target: p95 within 100 ms.
   Also the report page and the CSV export (availability of every kiosk) for all sites, one week.
3. Event to browser: a real Mosquitto and a real in-process Controller with the N kiosks; a kiosk
   publishes ``status`` offline (as its will would) and the time until the console's SSE stream
   delivers that kiosk's row to an HTTP client is measured. Target: within 1 s.
"""

from __future__ import annotations

import argparse
import json
import random
import shutil
import statistics
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

import httpx  # noqa: E402
import paho.mqtt.client as mqtt  # noqa: E402
from paho.mqtt.enums import CallbackAPIVersion  # noqa: E402

from contract import payloads, topics  # noqa: E402
from controller.store import Store  # noqa: E402
from controller.web.app import Console, build_console, create_app  # noqa: E402
from controller.web.serve import ConsoleServer  # noqa: E402

PASSWORD = "bench-password-1"


def seed(data_dir: Path, n: int, now: float, rng: random.Random) -> None:
    store = Store(data_dir)
    recs = []
    for i in range(n):
        state = "offline" if rng.random() < 0.03 else "online"
        recs.append({"kiosk_id": f"gd-{i:05d}", "site": f"community-{i // 10:04d}",
                     "state": state, "reason": "lwt" if state == "offline" else "",
                     "mode": "out_of_service" if rng.random() < 0.01 else "normal",
                     "devices": {"printer": "error" if rng.random() < 0.02 else "idle", "id_reader": "idle"},
                     "last_seen": now - rng.random() * 60, "state_since": now - 3600})
    with store.tx() as s:
        s.upsert_kiosks(recs)
    store.close()


def pct(xs: list[float], p: float) -> float:
    xs = sorted(xs)
    return xs[min(len(xs) - 1, int(round(p / 100 * (len(xs) - 1))))]


def ms(x: float) -> float:
    return round(x * 1000, 1)


def bench_http(data_dir: Path, args) -> tuple[dict, ConsoleServer, str, Console]:
    t0 = time.perf_counter()
    console = build_console(data_dir)
    console.accounts.add_user("bench", "operator", PASSWORD)
    token = console.accounts.create_token("bench", "viewer")
    server = ConsoleServer(create_app(console), "127.0.0.1:0")
    url = server.start(timeout=120)
    startup = time.perf_counter() - t0
    out: dict = {"kiosks": len(console.fleet.rows), "console_start_s": round(startup, 2)}
    with httpx.Client(base_url=url, timeout=30) as c:
        c.post("/login", data={"name": "bench", "password": PASSWORD})
        t = time.perf_counter()
        r = c.get("/fleet")
        out["fleet_first_render_ms"] = ms(time.perf_counter() - t)
        assert r.status_code == 200 and "gd-00000" in r.text, r.status_code
        times = []
        for i in range(30):
            t = time.perf_counter()
            c.get("/fleet", params={"page": i + 1})
            times.append(time.perf_counter() - t)
        out["fleet_render_ms"] = {"p50": ms(statistics.median(times)), "p95": ms(pct(times, 95)), "max": ms(max(times))}
        for name, path in (("report_page_ms", "/reports"), ("report_csv_ms", "/reports/report.csv")):
            t = time.perf_counter()
            r = c.get(path)
            out[name] = ms(time.perf_counter() - t)
            assert r.status_code == 200, (path, r.status_code)
    rng = random.Random(7)
    filters = [
        lambda: {"status": rng.choice(["offline", "degraded", "out_of_service", "online"])},
        lambda: {"site": f"community-{rng.randint(0, 2640):04d}"},
        lambda: {"q": f"gd-{rng.randint(0, 2641):04d}"},
        lambda: {"status": "online", "sort": "-last_seen", "page": rng.randint(1, 400)},
        lambda: {"q": "community-1", "status": "offline", "size": 100},
        lambda: {"status": "degraded", "site": f"community-{rng.randint(0, 2640):04d}"},
    ]
    times = []
    with httpx.Client(base_url=url, timeout=30, headers={"authorization": f"Bearer {token}"}) as c:
        for _ in range(args.requests):
            params = rng.choice(filters)()
            t = time.perf_counter()
            r = c.get("/api/v1/kiosks", params=params)
            times.append(time.perf_counter() - t)
            assert r.status_code == 200, (params, r.text)
    out["api_list_ms"] = {"n": len(times), "p50": ms(statistics.median(times)), "p95": ms(pct(times, 95)),
                          "max": ms(max(times))}
    if args.browser and Path("/usr/bin/chromium").exists():
        out["browser_fleet_load_ms"] = browser_load(url)
    return out, server, url, console


def browser_load(url: str) -> dict:
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        b = p.chromium.launch(executable_path="/usr/bin/chromium", args=["--no-sandbox", "--disable-gpu",
                              "--disable-background-networking", "--disable-component-update", "--disable-sync",
                              "--no-first-run"])
        page = b.new_page()
        page.goto(url + "login")
        page.fill("input[name=name]", "bench")
        page.fill("input[name=password]", PASSWORD)
        page.click("button[type=submit]")
        page.wait_for_url("**/fleet")
        times = []
        for _ in range(5):
            t = time.perf_counter()
            page.goto(url + "fleet", wait_until="load")
            page.wait_for_selector("#fleet tbody tr")
            times.append(time.perf_counter() - t)
        b.close()
    return {"median": ms(statistics.median(times)), "max": ms(max(times))}


def bench_events(data_dir: Path, args) -> dict:
    """MQTT status -> Controller -> store -> console poller -> SSE -> HTTP client."""
    from controller.server import Controller
    from controller.web.serve import start_console
    from foundation.settings import ControllerConfig, parse_broker_url
    from tests.support.broker import Mosquitto

    if shutil.which("mosquitto") is None:
        return {"skipped": "mosquitto not installed"}
    broker = Mosquitto(Path(tempfile.mkdtemp()) / "broker").start()
    try:
        config = ControllerConfig(broker=parse_broker_url(broker.url), data_dir=data_dir, http="127.0.0.1:0",
                                  telemetry_period=3600)
        ctl = Controller(config)
        ctl.start()
        server, url = start_console(ctl, config)
        console = server.app.state.console
        token = console.accounts.create_token("bench-events", "viewer")
        arrived: dict[str, float] = {}
        ready = threading.Event()

        def listen() -> None:
            try:
                with httpx.stream("GET", url + "events", headers={"authorization": f"Bearer {token}"},
                                  timeout=None) as r:
                    event = ""
                    for line in r.iter_lines():
                        if line.startswith("event:"):
                            event = line[6:].strip()
                            ready.set()
                        elif line.startswith("data:") and event == "kiosk":
                            row = json.loads(line[5:])
                            arrived.setdefault(f"{row['kiosk_id']}/{row['state']}", time.perf_counter())
            except httpx.HTTPError:
                return  # the server stopped at the end of the run

        threading.Thread(target=listen, daemon=True).start()
        ready.wait(10)
        pub = mqtt.Client(CallbackAPIVersion.VERSION2, protocol=mqtt.MQTTv5)
        pub.connect("127.0.0.1", broker.port)
        pub.loop_start()
        lat = []
        for i in range(args.events):
            kid = f"gd-{(i * 997) % args.kiosks:05d}"
            first = "online" if console.fleet.get(kid)["state"] != "online" else "offline"
            # Each publish is a real change (online -> offline -> online), so each must reach the browser.
            for state in (first, "online" if first == "offline" else "offline"):
                # As the kiosk agent says it: its birth, or its will when its connection is lost.
                body = payloads.offline(kid, f"b{i}", "lwt") if state == "offline" else \
                    payloads.birth(kid, mode="normal", boot_id=f"b{i}", site=console.fleet.get(kid)["site"],
                                   versions={"agent": "bench"}, devices=["printer", "id_reader"], ts=time.time())
                key = f"{kid}/{state}"
                arrived.pop(key, None)
                t = time.perf_counter()
                info = pub.publish(topics.topic(kid, "status"), topics.encode(body), *topics.FLAGS["status"])
                info.wait_for_publish(5)
                deadline = t + 5
                while key not in arrived and time.perf_counter() < deadline:
                    time.sleep(0.005)
                if key in arrived:
                    lat.append(arrived[key] - t)
        pub.loop_stop()
        pub.disconnect()
        server.stop()
        ctl.stop()
        missed = args.events * 2 - len(lat)
        return {"n": len(lat), "missed": missed, "p50_ms": ms(statistics.median(lat)) if lat else None,
                "p95_ms": ms(pct(lat, 95)) if lat else None, "max_ms": ms(max(lat)) if lat else None}
    finally:
        broker.stop()


def main() -> int:
    ap = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    ap.add_argument("--kiosks", type=int, default=26412)
    ap.add_argument("--requests", type=int, default=200)
    ap.add_argument("--events", type=int, default=20)
    ap.add_argument("--no-browser", dest="browser", action="store_false")
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args()
    tmp = Path(tempfile.mkdtemp(prefix="console-bench-"))
    try:
        t = time.perf_counter()
        seed(tmp, args.kiosks, time.time(), random.Random(1))
        result: dict[str, Any] = {"seed_s": round(time.perf_counter() - t, 2)}
        http, server, _, console = bench_http(tmp, args)
        result.update(http)
        server.stop()
        console.accounts.close()
        result["event_to_browser"] = bench_events(tmp, args)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    if args.json:
        print(json.dumps(result, indent=2))
    else:
        for k, v in result.items():
            print(f"{k:28} {v}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
