"""Fleet-link benchmark: a province of simulated kiosks against a private Mosquitto and the real controller.

    .venv/bin/python benchmarks/fleet_bench.py                      # this machine's scale (see --help)
    .venv/bin/python benchmarks/fleet_bench.py --kiosks 26412 --connections 5000 --workers 8 --duration 300
    .venv/bin/python benchmarks/fleet_bench.py --kiosks 100000 --connections 2000 --workers 4 --duration 300 \
        --warmup 120 --burst 0 --database postgresql --instances 2     # issue 16: two instances, 100,000 kiosks

Every kiosk sends telemetry every ``--period`` seconds (26,412 at 30 s is about 880 msg/s) and an
event now and then. ``--connections`` of them have their own MQTT connection with their own will
(answering commands); the rest share ``--workers`` connections. Loopback only; bounded in count and
time; stops everything by itself. Measured and printed as JSON:

* controller CPU (% of one core) and RSS at steady load;
* offline detection: some real connections go silent (socket kept open, no pings) and we time
  until the controller's store says offline; target p99 <= 1.5 x keepalive + 1 s;
* command round trip (controller queued -> kiosk result stored), p50/p99; target p99 <= 250 ms;
  and its stages (``command_stages_s``: operator action -> jobs run -> kiosk answered -> result's batch);
* device fault (printer paper out) published -> alarm row stored, p99; target <= 500 ms;
* ingest headroom: a burst of QoS 1 events, the controller's stored rate versus a raw paho
  subscriber's receive rate in the same run; goal >= 0.5 (``--burst 0``: none);
* at the end, every kiosk's stored state and latest telemetry against what its simulator sent
  (``every_kiosk``: missing, wrong state, wrong telemetry, with examples);
* the CPU of the controllers, the broker and PostgreSQL over the steady part, as % of one core.

``--database postgresql`` runs the controllers on a private PostgreSQL cluster
(``tests/support/postgres.py``); ``--instances N`` runs N controller instances on it (shared
subscriptions, the singleton-jobs lease, one signing key), as docs/scale-out.md deploys them.
"""

from __future__ import annotations

import argparse
import heapq
import json
import os
import random
import resource
import selectors
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from benchmarks import fleet_store  # noqa: E402
from contract import commands, device_status, payloads, signing, topics  # noqa: E402
from controller.store import enqueue_action  # noqa: E402
from foundation.errors import CommandRejected  # noqa: E402
from tests.support.broker import Mosquitto  # noqa: E402
from tests.support.postgres import PostgresCluster  # noqa: E402


def _pct(values: list[float], p: float) -> float | None:
    if not values:
        return None
    v = sorted(values)
    return round(v[min(len(v) - 1, int(p / 100 * len(v)))], 4)


def _raise_nofile() -> None:
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))


# -- roles run in child processes ----------------------------------------------------------------
def role_controller(args: argparse.Namespace) -> None:
    from controller.server import Controller
    from foundation.logs import setup_logging
    from foundation.settings import ControllerConfig, from_mapping

    setup_logging("ERROR")
    c = Controller(from_mapping(ControllerConfig, {"broker": args.broker, "data_dir": args.data,
                                                   "database": getattr(args, "database", ""),
                                                   "instance": getattr(args, "instance", ""),
                                                   "signing_key": getattr(args, "signing_key", ""),
                                                   "telemetry_period": args.period, "keepalive": 30}))
    c.start()
    print("READY", flush=True)
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    stop.wait()
    c.stop()


def _client(cid: str, will_of: str | None = None, boot_id: str = "") -> mqtt.Client:
    """A paho v5 client; ``will_of``: the kiosk whose will (status offline, ``lwt``) it carries."""
    c = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=cid, protocol=mqtt.MQTTv5)
    if will_of:
        c.will_set(topics.topic(will_of, "status"), topics.encode(payloads.offline(will_of, boot_id, "lwt")),
                   *topics.FLAGS["status"])
    return c


class _Kiosk:
    """What one simulated kiosk publishes, built by the contract's builders the way the kiosk agent
    builds it: a full telemetry snapshot first and every ``FULL_EVERY``-th time, deltas between (the
    bench's controller reads the current contract), events with a per-boot ``seq``."""

    def __init__(self, kiosk_id: str, rnd: random.Random, start: float) -> None:
        self.kiosk_id, self.rnd, self.start = kiosk_id, rnd, start
        self.boot_id = f"{rnd.getrandbits(64):016x}"
        self.seq = 0
        self.held: dict = {}
        self.last_sent = 0.0
        self.since_full = payloads.FULL_EVERY  # the first message is a full snapshot

    def birth(self, now: float) -> bytes:
        return topics.encode(payloads.birth(self.kiosk_id, mode="normal", boot_id=self.boot_id,
                                            site=f"site-{self.kiosk_id[:3]}", versions={"agent": "bench"},
                                            devices=["printer"], ts=now))

    def telemetry(self, now: float) -> bytes:
        full = payloads.telemetry(self.kiosk_id, ts=now, uptime=now - self.start,
                                  cpu=round(8 + self.rnd.random() * 10, 1), memory=40.1, disk=20.0,
                                  temperature=round(47 + self.rnd.random() * 2, 1), enclosure_temperature=None,
                                  devices={"printer": "idle"}, queue_depth=0, mode="normal")
        send_full = self.since_full + 1 >= payloads.FULL_EVERY
        body = full if send_full else payloads.telemetry_delta(self.held, full)
        self.since_full = 0 if send_full else self.since_full + 1
        self.held = payloads.merge_telemetry(self.held, payloads.parse_telemetry(body)).to_dict()
        self.last_sent = now
        return topics.encode(body)

    def event(self, now: float, event_type: str, fields: dict) -> bytes:
        self.seq += 1
        return topics.encode(payloads.event(self.kiosk_id, event_id=os.urandom(12).hex(), boot_id=self.boot_id,
                                            seq=self.seq, ts=now, type=event_type, fields=fields))


def _paper_out(kiosk_id: str) -> bytes:
    """The printer's retained status when its paper runs out, as the device manager publishes it."""
    status = device_status.build("error", device_status.printer_detail(known=True, paper="out"))
    return topics.encode(device_status.body(kiosk_id, status))


def _answer(kiosk_id: str, topic_name: str, payload: bytes) -> tuple[str, bytes]:
    """A kiosk's one result for a command (parsed and its arguments checked; the bench kiosks pin no
    controller key, so the signature is not verified)."""
    name = topic_name.rsplit("/", 1)[-1]
    body_id = commands.peek_id(payload)
    try:
        body = commands.parse(topic_name, payload, kiosk_id)
        commands.check_args(name, body.get("args", {}))
        res = commands.result(body_id, kiosk_id, "ok", data={})
    except CommandRejected as exc:
        res = commands.result(body_id, kiosk_id, "rejected", reason=exc.reason, error=str(exc))
    return topics.topic(kiosk_id, f"cmd/{name}/result"), topics.encode(res)


def role_kiosks(args: argparse.Namespace) -> None:
    """One worker: ``real`` kiosks with own connections plus ``shared`` kiosks on one connection.
    At the end it writes, per kiosk, what the store should show (``--out``): its state and the
    telemetry a reader holds after everything it sent (``payloads.merge_telemetry``)."""
    host, port = "127.0.0.1", int(args.broker.rsplit(":", 1)[1])
    rnd = random.Random(args.seed)
    ids = [f"B{args.worker:02d}-{i:05d}" for i in range(args.count)]
    real_ids, shared_ids = ids[:args.real], ids[args.real:]
    sel = selectors.DefaultSelector()
    clients: dict[str, mqtt.Client] = {}
    results: dict[str, list] = {"faults": [], "frozen": [], "answered": []}

    start = time.time()
    kiosks = {kid: _Kiosk(kid, rnd, start) for kid in ids}

    def on_cmd(client, userdata, msg):
        # When the kiosk had the command and answered: splits the round trip at the kiosk.
        results["answered"].append([commands.peek_id(msg.payload), time.time()])
        client.publish(*_answer(userdata, msg.topic, msg.payload), *topics.FLAGS["cmd/result"])

    for kid in real_ids:
        c = _client(f"kiosk-{kid}", kid, kiosks[kid].boot_id)
        c.user_data_set(kid)
        c.on_message = on_cmd
        c.connect(host, port, keepalive=args.keepalive)
        c.subscribe(topics.cmd_topic(kid, "+"), 1)
        c.publish(topics.topic(kid, "status"), kiosks[kid].birth(start), *topics.FLAGS["status"])
        clients[kid] = c
    shared = _client(f"bench-shared-{args.worker}")
    shared.max_inflight_messages_set(200)  # thousands of births (QoS 1) go out at once on it
    shared.connect(host, port, keepalive=60)
    clients["_shared"] = shared
    for kid in shared_ids:
        shared.publish(topics.topic(kid, "status"), kiosks[kid].birth(start), *topics.FLAGS["status"])
    for c in clients.values():
        sock = c.socket()
        if sock is None:
            raise RuntimeError("a benchmark client has no socket after connecting")
        sel.register(sock, selectors.EVENT_READ, c)
    frozen: set[str] = set()
    # Spread each kiosk's telemetry over the period so the load is steady, not a burst every 30 s;
    # a heap of due times, so the loop touches only the kiosks that are due.
    due = [(start + rnd.random() * args.period, i) for i in range(len(ids))]
    heapq.heapify(due)
    freeze_at = start + args.freeze_after
    to_freeze = real_ids[:args.freeze]
    # Faults start after the warm-up (the connect storm of every birth), so they measure steady load.
    warm = _warmup(args)
    fault_every = (args.duration - warm - 2) / max(1, args.faults)
    next_fault = start + warm
    last_misc = 0.0
    print("READY", flush=True)
    while time.time() - start < args.duration:
        for key, _ in sel.select(timeout=0.01):
            c = key.data
            if c._client_id.decode().removeprefix("kiosk-") not in frozen:
                c.loop_read()
        now = time.time()
        while due and due[0][0] <= now:
            at, i = heapq.heappop(due)
            kid = ids[i]
            if kid in frozen:
                continue
            c = clients.get(kid, shared)
            c.publish(topics.topic(kid, "telemetry"), kiosks[kid].telemetry(now), *topics.FLAGS["telemetry"])
            if rnd.random() < args.period / args.event_every:
                c.publish(topics.topic(kid, "events"), kiosks[kid].event(
                    now, "device_state", {"device": "printer", "state": "idle", "fault": "",
                                          "previous": "busy"}), *topics.FLAGS["events"])
            heapq.heappush(due, (max(at + args.period, now), i))
        if now >= next_fault and shared_ids:
            kid = rnd.choice(shared_ids)
            shared.publish(topics.topic(kid, "devices/printer"), _paper_out(kid), *topics.FLAGS["devices"])
            results["faults"].append([kid, time.time()])
            next_fault = now + fault_every
        if to_freeze and now >= freeze_at:
            for kid in to_freeze:
                frozen.add(kid)  # socket stays open, nothing more is sent: only keepalive can tell
                results["frozen"].append([kid, time.time()])
            to_freeze = []
        for kid, c in clients.items():
            if kid not in frozen and c.want_write():
                c.loop_write()
        if now - last_misc > 1.0:
            for kid, c in clients.items():
                if kid not in frozen:
                    c.loop_misc()
            last_misc = now
    # Everything queued goes out before the record of what was sent is written.
    drain_until = time.time() + 10
    while time.time() < drain_until and any(k not in frozen and c.want_write() for k, c in clients.items()):
        for kid, c in clients.items():
            if kid not in frozen and c.want_write():
                c.loop_write()
        for key, _ in sel.select(timeout=0.01):
            if key.data._client_id.decode().removeprefix("kiosk-") not in frozen:
                key.data.loop_read()
    if args.out:
        Path(args.out).write_text(json.dumps({kid: {"state": "offline" if kid in frozen else "online",
                                                    "last_sent": k.last_sent, "telemetry": k.held}
                                              for kid, k in kiosks.items()}))
    print(json.dumps(results), flush=True)
    for kid, c in clients.items():
        if kid not in frozen:
            c.disconnect()
            c.loop_write()


def role_blast(args: argparse.Namespace) -> None:
    """Publish ``count`` QoS 1 events as fast as the broker takes them."""
    port = int(args.broker.rsplit(":", 1)[1])
    c = _client(f"bench-blast-{args.worker}")
    c.max_inflight_messages_set(1000)
    c.connect("127.0.0.1", port)
    c.loop_start()
    start = time.time()
    kiosks = [_Kiosk(f"X{args.worker:02d}-{n:05d}", random.Random(n), start) for n in range(500)]
    for n in range(args.count):
        k = kiosks[n % len(kiosks)]
        # "burst" is not a word of the vocabulary: event types are open (a newer minor may add one),
        # and it keeps the burst countable apart from the steady load's events.
        c.publish(topics.topic(k.kiosk_id, "events"), k.event(time.time(), "burst", {"n": n}),
                  *topics.FLAGS["events"])
        while len(c._out_messages) > 5000:
            time.sleep(0.001)
    while c._out_messages:
        time.sleep(0.05)
    c.disconnect()
    c.loop_stop()


# -- orchestration -------------------------------------------------------------------------------
def _proc_stats(pid: int) -> tuple[float, int]:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    cpu = (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    rss = int(fields[21]) * os.sysconf("SC_PAGE_SIZE")
    return cpu, rss


def _child(args: argparse.Namespace, role: str, *extra: str) -> subprocess.Popen:
    argv = [sys.executable, __file__, "--role", role, "--broker", args.broker, "--data", args.data,
            "--period", str(args.period), "--keepalive", str(args.keepalive), "--database", args.database,
            "--warmup", str(_warmup(args)), *extra]
    return subprocess.Popen(argv, stdout=subprocess.PIPE, text=True, preexec_fn=_raise_nofile,
                            env={**os.environ, "PYTHONPATH": str(ROOT)})


def _warmup(args: argparse.Namespace) -> float:
    """Seconds from the kiosks' start before faults and measurements: the connect storm of every
    birth is over by then (at least one telemetry period)."""
    return args.warmup or min(args.period, args.duration / 4)


def _ready(p: subprocess.Popen, timeout: float = 120) -> None:
    deadline = time.monotonic() + timeout
    if p.stdout is None:
        raise RuntimeError("child started without a pipe for its stdout")
    while time.monotonic() < deadline:
        line = p.stdout.readline()
        if line.strip() == "READY":
            return
        if not line and p.poll() is not None:
            raise RuntimeError(f"child exited {p.returncode}")
    raise TimeoutError("child not ready")


def _controllers(args: argparse.Namespace, work: Path) -> list[subprocess.Popen]:
    """``--instances`` controller processes: one plain controller, or several instances (shared
    subscriptions, the singleton-jobs lease) naming one command-signing key, as a fleet runs them."""
    if args.instances == 1:
        return [_child(args, "controller")]
    key = work / "key" / signing.KEY_FILE
    signing.load_or_create_key(work / "key")
    return [_child(args, "controller", "--instance", chr(ord("a") + n), "--data", str(work / f"controller-{n}"),
                    "--signing-key", str(key)) for n in range(args.instances)]


def orchestrate(args: argparse.Namespace) -> dict:
    _raise_nofile()
    work = Path(tempfile.mkdtemp(prefix="fleet-bench-"))
    work.chmod(0o755)  # the postgres user enters it when we run as root
    broker = Mosquitto(work / "broker", extra_config=["max_connections -1", "max_keepalive 600"])
    broker.start()
    args.broker, args.data = broker.url, str(work / "controller")
    cluster = None
    if args.database == "postgresql":
        cluster = PostgresCluster(work / "pg").start()
        args.database = cluster.create_database("fleet")
    elif args.instances > 1:
        raise SystemExit("--instances > 1 needs --database postgresql (SQLite serves one controller)")
    procs: list[subprocess.Popen] = []
    out: dict = {"kiosks": args.kiosks, "real_connections": args.connections, "workers": args.workers,
                 "telemetry_period_s": args.period, "duration_s": args.duration, "keepalive_s": args.keepalive,
                 "backend": "postgresql" if cluster else "sqlite", "instances": args.instances,
                 "cpu_cores": os.cpu_count(), "load_average_at_start": os.getloadavg()}
    try:
        ctls = _controllers(args, work)
        procs += ctls
        for ctl in ctls:
            _ready(ctl)
        per, real_per = args.kiosks // args.workers, args.connections // args.workers
        workers = []
        for w in range(args.workers):
            p = _child(args, "kiosks", "--worker", str(w), "--count", str(per), "--real", str(real_per),
                       "--duration", str(args.duration), "--freeze", str(args.freeze // args.workers or 0),
                       "--freeze-after", str(args.duration - 3 * args.keepalive), "--faults",
                       str(args.faults // args.workers), "--seed", str(w), "--event-every", str(args.event_every),
                       "--out", str(work / f"kiosks-{w}.json"))
            procs.append(p)
            workers.append(p)
        t_start = time.monotonic()
        for p in workers:
            _ready(p)
        conn = fleet_store.connect(args.database, args.data)
        wconn = fleet_store.connect(args.database, args.data)
        # Warm up: every birth stored, then the rest of the warm-up; then measure the steady part.
        while time.monotonic() - t_start < args.duration / 2:
            n = conn.execute("SELECT COUNT(*) FROM kiosks WHERE kiosk_id LIKE 'B%' AND state = 'online'").fetchone()[0]
            if n >= per * args.workers:
                break
            time.sleep(1.0)
        out["all_births_stored_s"] = round(time.monotonic() - t_start, 1)
        time.sleep(max(0.0, _warmup(args) - (time.monotonic() - t_start)))
        pids = {"controllers": [c.pid for c in ctls], "broker": [broker.proc.pid] if broker.proc else [],
                "postgresql": fleet_store.postgres_pids(cluster.workdir / "data") if cluster else []}
        cpu0 = {k: fleet_store.cpu_seconds(v) for k, v in pids.items()}
        per_ctl0 = [fleet_store.cpu_seconds([c.pid]) for c in ctls]
        load0 = os.getloadavg()[0]
        t0 = time.monotonic()
        rss_max = [0] * len(ctls)
        commands_sent = 0
        real_ids = [f"B{w:02d}-{i:05d}" for w in range(args.workers) for i in range(real_per)]
        cmd_deadline = time.monotonic() + args.duration / 3
        while time.monotonic() < cmd_deadline:
            enqueue_action(wconn, "bench", "command", {"kiosk_id": random.choice(real_ids[args.freeze:]),
                                                        "name": "collect_diagnostics", "args": {}}, time.time())
            commands_sent += 1
            rss_max = [max(m, fleet_store.rss_bytes(c.pid)) for m, c in zip(rss_max, ctls, strict=True)]
            time.sleep(0.2)
        span = time.monotonic() - t0
        cpu = {k: round(100 * (fleet_store.cpu_seconds(v) - cpu0[k]) / span, 1) for k, v in pids.items()}
        out["controller_cpu_percent"] = cpu["controllers"]
        out["controller_cpu_percent_each"] = [round(100 * (fleet_store.cpu_seconds([c.pid]) - c0) / span, 1)
                                              for c, c0 in zip(ctls, per_ctl0, strict=True)]
        out["controller_rss_mb"] = round(max(rss_max) / 2**20, 1)
        out["controller_rss_mb_each"] = [round(m / 2**20, 1) for m in rss_max]
        out["cpu_percent_of_one_core"] = cpu
        out["load_average_during"] = [round(load0, 1), round(os.getloadavg()[0], 1)]
        results = {"faults": [], "frozen": [], "answered": []}
        for p in workers:
            p.wait(args.duration + 300)
            for line in p.stdout:
                if line.startswith("{"):
                    r = json.loads(line)
                    results["faults"] += r["faults"]
                    results["frozen"] += r["frozen"]
                    results["answered"] += r["answered"]
        time.sleep(1.5 * args.keepalive + 3)
        online = conn.execute("SELECT COUNT(*) FROM kiosks WHERE kiosk_id LIKE 'B%'").fetchone()[0]
        out["kiosks_registered"] = online
        out["messages_per_s_offered"] = round(args.kiosks / args.period, 1)
        expected: dict = {}
        for w in range(args.workers):
            expected.update(json.loads((work / f"kiosks-{w}.json").read_text()))
        out["every_kiosk"] = fleet_store.check_every_kiosk(conn, expected, stale_after=3 * args.period,
                                                           now=time.time())
        out.update(_figures(args, conn, results, commands_sent))
        if args.burst:
            out["ingest"] = _ingest(args, conn)
    finally:
        fleet_store.stop_processes(procs, 20)
        broker.stop()
        if cluster is not None:
            cluster.stop()
        shutil.rmtree(work, ignore_errors=True)
    return out


def _figures(args: argparse.Namespace, conn: Any, results: dict, commands_sent: int) -> dict:
    """Offline detection, fault to alarm and command round trip, from the store."""
    out: dict = {}
    det = []
    for kid, t in results["frozen"]:
        row = conn.execute("SELECT state, state_since FROM kiosks WHERE kiosk_id=?", (kid,)).fetchone()
        if row and row[0] == "offline":
            det.append(row[1] - t)
    out["offline_detection_s"] = {"n": len(results["frozen"]), "detected": len(det), "p50": _pct(det, 50),
                                  "p99": _pct(det, 99), "target_p99": 1.5 * args.keepalive + 1}
    lat = []
    for kid, t in results["faults"]:
        row = conn.execute("SELECT MIN(raised_at) FROM alarms WHERE kiosk_id=? AND rule='paper_out'",
                           (kid,)).fetchone()
        if row and row[0]:
            lat.append(row[0] - t)
    out["fault_to_alarm_s"] = {"n": len(results["faults"]), "stored": len(lat), "p50": _pct(lat, 50),
                               "p99": _pct(lat, 99), "target_p99": 0.5}
    rt = [r[0] for r in conn.execute("SELECT finished_at - issued_at FROM commands WHERE status='succeeded'")]
    out["command_round_trip_s"] = {"sent": commands_sent, "succeeded": len(rt), "p50": _pct(rt, 50),
                                   "p99": _pct(rt, 99), "target_p99": 0.25}
    out["command_stages_s"] = _command_stages(conn, dict(results["answered"]))
    return out


def _command_stages(conn: Any, answered: dict[str, float]) -> dict:
    """Where a command's time goes, p50/p99 of each stage: ``queued_to_issued`` (the operator's
    action in the table until the lease holder's jobs run took it: ``issued_at``), ``issued_to_kiosk``
    (commit, publish, broker, until the kiosk answered), ``kiosk_to_result`` (the result through
    the broker, an instance's inbox and gather window, until its batch began: ``finished_at``) and
    ``queued_to_result``, all of it as the operator waits (the result batch's own commit not included)."""
    stages: dict[str, list[float]] = {"queued_to_issued": [], "issued_to_kiosk": [], "kiosk_to_result": [],
                                      "queued_to_result": []}
    cmds = {r[0]: (r[1], r[2]) for r in conn.execute(
        "SELECT id, issued_at, finished_at FROM commands WHERE status='succeeded'")}
    for queued, result in conn.execute("SELECT ts, result FROM actions WHERE kind='command' AND status='done'"):
        cid = json.loads(result).get("id")
        if cid not in cmds:
            continue
        issued, finished = cmds[cid]
        stages["queued_to_issued"].append(issued - queued)
        stages["queued_to_result"].append(finished - queued)
        if cid in answered:
            stages["issued_to_kiosk"].append(answered[cid] - issued)
            stages["kiosk_to_result"].append(finished - answered[cid])
    return {k: {"n": len(v), "p50": _pct(v, 50), "p99": _pct(v, 99), "max": _pct(v, 100)} for k, v in stages.items()}


def _ingest(args: argparse.Namespace, conn: Any) -> dict:
    """Same burst, two consumers: the controller (stored rate) and a raw paho subscriber."""
    port = int(args.broker.rsplit(":", 1)[1])
    got = {"n": 0, "first": 0.0, "last": 0.0}

    def on_msg(c, u, m):
        now = time.time()
        got["first"] = got["first"] or now
        got["n"] += 1
        got["last"] = now

    raw = _client("bench-raw")
    raw.on_message = on_msg
    raw.connect("127.0.0.1", port)
    raw.subscribe("kiosk/v1/+/events", 1)
    raw.loop_start()
    time.sleep(0.5)
    before = conn.execute("SELECT COUNT(*) FROM events WHERE type='burst'").fetchone()[0]
    total = args.burst
    blasters = [_child(args, "blast", "--worker", str(w), "--count", str(total // 2)) for w in range(2)]
    t0 = time.time()
    stored_t = None
    deadline = time.monotonic() + 300
    while time.monotonic() < deadline:
        n = conn.execute("SELECT COUNT(*) FROM events WHERE type='burst'").fetchone()[0] - before
        if n >= total:
            stored_t = time.time()
            break
        time.sleep(0.05)
    for b in blasters:
        b.wait(60)
    raw.loop_stop()
    raw_rate = got["n"] / max(1e-6, got["last"] - t0)
    ctl_rate = total / (stored_t - t0) if stored_t else None
    return {"burst_events": total, "raw_subscriber_msgs_per_s": round(raw_rate), "raw_received": got["n"],
            "controller_stored_per_s": round(ctl_rate) if ctl_rate else None,
            "ratio": round(ctl_rate / raw_rate, 2) if ctl_rate else None, "goal_ratio": 0.5}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--kiosks", type=int, default=26412)
    p.add_argument("--connections", type=int, default=400, help="kiosks with their own connection and will")
    p.add_argument("--workers", type=int, default=2, help="kiosk simulator processes")
    p.add_argument("--period", type=float, default=30.0, help="telemetry period in seconds")
    p.add_argument("--duration", type=float, default=90.0, help="seconds of steady load")
    p.add_argument("--keepalive", type=int, default=10)
    p.add_argument("--freeze", type=int, default=20, help="real connections that go silent near the end")
    p.add_argument("--faults", type=int, default=40, help="printer faults spread over the run")
    p.add_argument("--event-every", type=float, default=600.0, help="mean seconds between a kiosk's events")
    p.add_argument("--burst", type=int, default=20000, help="events in the ingest-headroom burst (0: none)")
    p.add_argument("--database", default="", help="'postgresql': a private PostgreSQL cluster (default SQLite)")
    p.add_argument("--instances", type=int, default=1, help="controller instances (more than 1: PostgreSQL)")
    p.add_argument("--warmup", type=float, default=0.0,
                   help="seconds before faults and measurements (default: one period, at most a quarter of the run)")
    p.add_argument("--role", default="main", help=argparse.SUPPRESS)
    for hidden in ("--broker", "--data", "--instance", "--signing-key", "--out"):
        p.add_argument(hidden, default="", help=argparse.SUPPRESS)
    for hidden in ("--worker", "--count", "--real", "--seed"):
        p.add_argument(hidden, type=int, default=0, help=argparse.SUPPRESS)
    p.add_argument("--freeze-after", type=float, default=0.0, help=argparse.SUPPRESS)
    args = p.parse_args()
    if args.role == "controller":
        role_controller(args)
    elif args.role == "kiosks":
        role_kiosks(args)
    elif args.role == "blast":
        role_blast(args)
    else:
        if not 0 <= args.freeze < args.connections:
            p.error(f"--freeze {args.freeze} must be below --connections {args.connections}: "
                    "the commands go to real connections that stay up")
        print(json.dumps(orchestrate(args), indent=2))


if __name__ == "__main__":
    main()
