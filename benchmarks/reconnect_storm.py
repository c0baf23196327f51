"""Reconnect storm: the broker restarts under the whole fleet, every kiosk with a journal to flush.

    .venv/bin/python benchmarks/reconnect_storm.py [--kiosks 26412] [--connections 19000]
        [--workers 4] [--events 3] [--down 5] [--limit 300]

Simulated kiosks (``--workers`` processes, each driving its share of paho clients from one
selector loop) connect to a private Mosquitto with the kiosk agent's own reconnect policy
(``foundation.backoff.Backoff``, base 0.5 s, cap ``kiosk_ui.agent.agent.RECONNECT_CAP``: capped
full jitter), publish their birth (``payloads.birth``) and subscribe to ``events/ack`` as the agent
does. Once the controller (its own process) shows every kiosk online, the broker is stopped; while
it is down every kiosk journals ``--events`` events (``payloads.event``, unique ids); then the
broker starts again on the same port. Each kiosk reconnects, publishes its birth again and sends
its journal, keeping each event until the controller's ``events/ack`` names it and re-sending
after the agent's ``ACK_WAIT`` without one (doubling, as the agent does). Like the agent, each
kiosk reads the controller's retained presence: no timed re-send while it says offline, one re-send
at once when it turns online again unless the presence says the broker queued the events for it
(``queued_while_away``: then the wait for acknowledgements starts again instead), the agent's own
decision, ``kiosk_ui.agent.resend_rule``.

Measured from the broker's restart: when the controller's store shows every kiosk online again
(``last_seen`` after the restart) and when it holds every journaled event (0 lost: each id stored
once; the ids are the primary key). Goal: both within 5 minutes (issue 16). A kiosk id beyond
``--connections`` shares a connection with another kiosk: the broker's process may hold at most
the machine's file-descriptor limit of sockets (20,000 here, not raisable), so 26,412 kiosks ride
on at most ``--connections`` connections. Loopback only; bounded by ``--limit``; stops by itself.
"""

from __future__ import annotations

import argparse
import json
import os
import selectors
import shutil
import signal
import socket
import sqlite3
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from pathlib import Path

import paho.mqtt.client as mqtt

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from benchmarks.fleet_bench import _raise_nofile, _ready, role_controller  # noqa: E402
from contract import payloads, topics  # noqa: E402
from contract.mqtt_client import make_client  # noqa: E402
from controller.store import DB_NAME  # noqa: E402
from foundation.backoff import Backoff  # noqa: E402
from foundation.errors import KioskError  # noqa: E402
from foundation.settings import parse_broker_url  # noqa: E402
from kiosk_ui.agent import resend_rule  # noqa: E402
from kiosk_ui.agent.agent import RECONNECT_CAP  # noqa: E402
from kiosk_ui.agent.event_sender import ACK_WAIT, ACK_WAIT_CAP  # noqa: E402
from tests.support.broker import Mosquitto  # noqa: E402

GOAL_S = 300.0


class Link:
    """One MQTT connection carrying one or more simulated kiosks, each with its journal."""

    def __init__(self, n: int, worker: int, kiosks: list[str], broker: str) -> None:
        self.kiosks = kiosks
        self.client = make_client(f"storm-{worker}-{n}", parse_broker_url(broker))
        self.client.reconnect_delay_set(1, 1)  # unused: we reconnect ourselves, like the agent
        first = kiosks[0]
        qos, retain = topics.FLAGS["status"]
        self.client.will_set(topics.topic(first, "status"), topics.encode(payloads.offline(first, f"b-{first}", "lwt")),
                             qos, retain)
        self.backoff = Backoff(base=0.5, cap=RECONNECT_CAP)
        self.connected = False
        self.retry_at = 0.0
        self.journal: dict[str, dict[str, tuple[bytes, float]]] = {k: {} for k in kiosks}  # id -> (payload, sent)
        self.resend_after = ACK_WAIT
        self.presence: bool | None = None  # the controller's, as read on this connection (the agent's)
        self.resends = 0  # journal rounds sent again (timed or on the controller's return)
        self.client.on_connect = self._on_connect
        self.client.on_disconnect = self._on_disconnect
        self.client.on_message = self._on_message
        self.seq = 0

    def _on_connect(self, client, userdata, flags, reason_code, properties) -> None:
        if reason_code.is_failure:
            return
        self.connected = True
        self.presence = None
        self.backoff.reset()
        now = time.time()
        qos, retain = topics.FLAGS["status"]
        client.subscribe([(topics.topic(k, "events/ack"), topics.QOS["events/ack"]) for k in self.kiosks]
                         + [(topics.CONTROLLER_STATUS, 1)])
        for k in self.kiosks:
            client.publish(topics.topic(k, "status"), topics.encode(payloads.birth(
                k, mode="normal", boot_id=f"b-{k}", site=f"site-{k[-2:]}", versions={"app": "1.0"},
                devices=["printer"], ts=now)), qos, retain)
        self.flush(now)

    def _on_disconnect(self, client, userdata, flags, reason_code, properties) -> None:
        if self.connected:
            self.connected = False
            self.presence = None
            self.retry_at = time.time() + self.backoff.next_delay()

    def _on_message(self, client, userdata, msg) -> None:
        if msg.topic == topics.CONTROLLER_STATUS:
            try:
                body = topics.decode(msg.payload)
                online = payloads.parse_controller_status(body)
            except KioskError:
                return
            queued = payloads.controller_queued_while_away(body)
            previous, self.presence = self.presence, online
            if resend_rule.send_again_at_once(previous, online, queued):
                self.flush(time.time(), again=True)
            elif resend_rule.restart_wait(previous, online, queued):
                self.restart_wait(time.time())
            return
        kiosk = msg.topic.split("/")[2]
        for event_id in payloads.parse_events_ack(topics.decode(msg.payload)):
            self.journal.get(kiosk, {}).pop(event_id, None)
        self.resend_after = ACK_WAIT

    def journal_events(self, n: int, now: float) -> None:
        for k in self.kiosks:
            for _ in range(n):
                self.seq += 1
                eid = uuid.uuid4().hex
                body = payloads.event(k, event_id=eid, boot_id=f"b-{k}", seq=self.seq, ts=now, type="session_end",
                                      fields={"service": "social_security"})
                self.journal[k][eid] = (topics.encode(body), 0.0)

    def flush(self, now: float, *, only_due: bool = False, again: bool = False) -> None:
        """Send journaled events: all of them on connect or ``again`` (the controller is back, which
        does not lengthen the wait, as in the agent), later those unacknowledged for too long."""
        if not self.connected:
            return
        resent = False
        for k, entries in self.journal.items():
            for eid, (payload, sent) in list(entries.items()):
                if only_due and not resend_rule.send_again_when_due(self.presence, sent, now, self.resend_after):
                    continue
                resent = resent or sent > 0
                self.client.publish(topics.topic(k, "events"), payload, topics.QOS["events"])
                entries[eid] = (payload, now)
        if resent:
            self.resends += 1
            if not again:
                self.resend_after = min(self.resend_after * 2, ACK_WAIT_CAP)

    def restart_wait(self, now: float) -> None:
        """The controller is back and the broker queued the events for it: each one's wait for an
        acknowledgement starts again now (the agent's ``_restart_wait``)."""
        for entries in self.journal.values():
            for eid, (payload, sent) in entries.items():
                if sent:
                    entries[eid] = (payload, now)

    def left(self) -> int:
        return sum(len(e) for e in self.journal.values())


def role_kiosks(args: argparse.Namespace) -> None:
    """One worker process: its links, a selector loop, commands on stdin (journal / report / stop)."""
    ids = [f"S{args.worker:02d}-{i:05d}" for i in range(args.count)]
    per_link = [ids[i::args.links] for i in range(args.links)]
    links = [Link(n, args.worker, ks, args.broker) for n, ks in enumerate(per_link) if ks]
    host, port = "127.0.0.1", int(args.broker.rsplit(":", 1)[1])
    sel = selectors.DefaultSelector()
    registered: dict[Link, object] = {}
    commands: list[str] = []
    threading.Thread(target=lambda: commands.extend(iter(sys.stdin.readline, "")), daemon=True).start()
    start = time.time()
    for i, link in enumerate(links):
        link.retry_at = start + link.backoff.next_delay() * i / max(1, len(links))  # a first boot is spread too
        link.client.connect_async(host, port, keepalive=60, clean_start=True)
    last_misc = 0.0
    print("READY", flush=True)
    while time.time() - start < args.duration:
        now = time.time()
        # First forget every socket that closed: its descriptor number may come back at once for
        # another link's new connection, which must then be registered afresh.
        for link in links:
            old = registered.get(link)
            if old is not None and link.client.socket() is not old:
                _forget(sel, registered.pop(link))
                if link.client.socket() is None and link.connected:
                    link._on_disconnect(link.client, None, None, None, None)
        for link in links:
            if link.client.socket() is None and not link.connected and now >= link.retry_at:
                try:
                    link.client.reconnect()
                except OSError:
                    link.retry_at = now + link.backoff.next_delay()
                    continue
            sock = link.client.socket()
            if sock is not None and link not in registered:
                _forget(sel, sock)  # a stale registration under the same descriptor number
                sel.register(sock, selectors.EVENT_READ, link)
                registered[link] = sock
        for key, _ in sel.select(timeout=0.01):
            link = key.data
            if link.client.loop_read(100) != mqtt.MQTT_ERR_SUCCESS:
                link.client._sock_close()
        for link in links:
            if link.client.socket() is not None and link.client.want_write():
                if link.client.loop_write() != mqtt.MQTT_ERR_SUCCESS:
                    link.client._sock_close()
        if now - last_misc > 1.0:
            for link in links:
                if link.client.socket() is not None:
                    link.client.loop_misc()
                link.flush(now, only_due=True)
            last_misc = now
        while commands:
            cmd = commands.pop(0).split()
            if cmd[0] == "journal":
                for link in links:
                    link.journal_events(int(cmd[1]), now)
            elif cmd[0] == "report":
                print(json.dumps({"connected": sum(1 for lk in links if lk.connected),
                                  "links": len(links), "journal_left": sum(lk.left() for lk in links),
                                  "resends": sum(lk.resends for lk in links)}), flush=True)
            elif cmd[0] == "stop":
                return


def _forget(sel: selectors.BaseSelector, sock: object) -> None:
    try:
        sel.unregister(sock)  # type: ignore[arg-type]
    except (KeyError, ValueError):
        pass


def _duplicates(data: str) -> int:
    """Events the controller received again (a kiosk re-sent before its acknowledgement came)."""
    conn = sqlite3.connect(f"file:{data}/{DB_NAME}?mode=ro", uri=True, timeout=10)
    try:
        row = conn.execute("SELECT value FROM counters WHERE name='events_duplicate'").fetchone()
    finally:
        conn.close()
    return int(row[0]) if row else 0


def _store_counts(data: str, since: float) -> tuple[int, int]:
    conn = sqlite3.connect(f"file:{data}/{DB_NAME}?mode=ro", uri=True, timeout=10)
    try:
        # These kiosks send no telemetry, so the controller calls one "stale" 90 s after its birth
        # (connected, silent): still back, as its birth after ``since`` shows.
        online = conn.execute("SELECT COUNT(*) FROM kiosks WHERE state IN ('online', 'stale') AND last_seen >= ?",
                              (since,)).fetchone()[0]
        events = conn.execute("SELECT COUNT(*) FROM events").fetchone()[0]
    finally:
        conn.close()
    return int(online), int(events)


def _child(args: argparse.Namespace, role: str, *extra: str) -> subprocess.Popen:
    argv = [sys.executable, __file__, "--role", role, "--broker", args.broker, "--data", args.data, *extra]
    return subprocess.Popen(argv, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True,
                            preexec_fn=_raise_nofile, env={**os.environ, "PYTHONPATH": str(ROOT)})


def _ask(workers: list[subprocess.Popen]) -> list[dict]:
    for p in workers:
        p.stdin.write("report\n")  # type: ignore[union-attr]
        p.stdin.flush()  # type: ignore[union-attr]
    return [json.loads(p.stdout.readline()) for p in workers]  # type: ignore[union-attr]


def _port_below_ephemeral_range() -> int:
    """A free port the kernel never hands out as a client's own port. Thousands of kiosks retrying
    a stopped broker's loopback port inside that range sooner or later draw it as their own and
    connect to themselves (TCP simultaneous open), holding the port: the broker then cannot start
    again (seen at 8,000 kiosks). A real broker listens on 1883/8883, outside the range."""
    try:
        low = int(Path("/proc/sys/net/ipv4/ip_local_port_range").read_text().split()[0])
    except (OSError, ValueError, IndexError):
        low = 32768
    for port in range(low - 1, 1024, -1):
        with socket.socket() as s:
            try:
                s.bind(("127.0.0.1", port))
            except OSError:
                continue
            return port
    raise OSError("no free port below the ephemeral range")


def _watch_controller(broker: str, since: float) -> tuple[mqtt.Client, dict[str, float]]:
    """When the controller's presence says online again with a stamp after ``since`` (its own
    reconnect, not the retained word from before the restart), seconds after ``since``."""
    seen: dict[str, float] = {}
    client = make_client(f"storm-watch-{uuid.uuid4().hex[:6]}", parse_broker_url(broker))
    client.reconnect_delay_set(0.1, 0.1)  # type: ignore[arg-type] - the watcher must not be the late one

    def on_connect(c, userdata, flags, reason_code, properties) -> None:
        c.subscribe(topics.CONTROLLER_STATUS, 1)

    client.on_connect = on_connect

    def on_message(c, userdata, msg) -> None:
        body = topics.decode(msg.payload)
        if body.get("state") == "online" and float(body.get("ts") or 0) >= since and "back_s" not in seen:
            seen["back_s"] = round(time.time() - since, 2)

    client.on_message = on_message
    host, port = broker.removeprefix("mqtt://").rsplit(":", 1)
    client.connect_async(host, int(port))
    client.loop_start()
    return client, seen


def orchestrate(args: argparse.Namespace) -> dict:
    _raise_nofile()
    work = Path(tempfile.mkdtemp(prefix="reconnect-storm-"))
    broker = Mosquitto(work / "broker", port=_port_below_ephemeral_range(),
                       extra_config=["max_connections -1", "max_queued_messages 0"]).start()
    args.broker, args.data = broker.url, str(work / "controller")
    args.period, args.database = 30.0, ""
    out: dict = {"kiosks": args.kiosks, "connections": min(args.kiosks, args.connections),
                 "events_per_kiosk": args.events, "broker_down_s": args.down, "goal_s": GOAL_S}
    procs: list[subprocess.Popen] = []
    try:
        ctl = _child(args, "controller", "--period", "30", "--database", "")
        procs.append(ctl)
        _ready(ctl)
        per = args.kiosks // args.workers
        links = min(args.kiosks, args.connections) // args.workers
        workers = [_child(args, "kiosks", "--worker", str(w), "--count", str(per + (w < args.kiosks % args.workers)),
                          "--links", str(links), "--duration", str(args.limit * 3))
                   for w in range(args.workers)]
        procs += workers
        for p in workers:
            _ready(p)
        t0 = time.time()
        while _store_counts(args.data, 0)[0] < args.kiosks:
            if time.time() - t0 > args.limit:
                raise TimeoutError(f"first boot: only {_store_counts(args.data, 0)[0]} kiosks online")
            time.sleep(1.0)
        out["first_boot_all_online_s"] = round(time.time() - t0, 1)
        broker.stop()
        for p in workers:
            p.stdin.write(f"journal {args.events}\n")  # type: ignore[union-attr]
            p.stdin.flush()  # type: ignore[union-attr]
        time.sleep(args.down)
        restart = time.time()
        broker.start()
        watcher, controller = _watch_controller(args.broker, restart)
        want = args.kiosks * args.events
        all_online = all_events = None
        while time.time() - restart < args.limit and (all_online is None or all_events is None):
            online, events = _store_counts(args.data, restart)
            t = round(time.time() - restart, 1)
            if all_online is None and online >= args.kiosks:
                all_online = t
            if all_events is None and events >= want:
                all_events = t
            time.sleep(1.0)
        online, events = _store_counts(args.data, restart)
        watcher.loop_stop()
        reports = _ask(workers)
        out.update({"all_online_s": all_online, "all_events_stored_s": all_events, "online_after_restart": online,
                    "events_stored": events, "events_journaled": want,
                    "journal_left_on_kiosks": sum(r["journal_left"] for r in reports),
                    "links_connected": sum(r["connected"] for r in reports),
                    "events_received_again": _duplicates(args.data),
                    "kiosk_resend_rounds": sum(r["resends"] for r in reports),
                    "controller_back_s": controller.get("back_s")})
        return out
    finally:
        for p in procs:
            if p.poll() is None:
                p.send_signal(signal.SIGTERM) if p is procs[0] else p.kill()
        for p in procs:
            try:
                p.wait(60)
            except subprocess.TimeoutExpired:
                p.kill()
        broker.stop()
        shutil.rmtree(work, ignore_errors=True)


def main() -> None:
    p = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    p.add_argument("--role", default="orchestrate", choices=["orchestrate", "controller", "kiosks"])
    p.add_argument("--kiosks", type=int, default=26412)
    p.add_argument("--connections", type=int, default=19000, help="at most this many MQTT connections in all")
    p.add_argument("--workers", type=int, default=4)
    p.add_argument("--events", type=int, default=3, help="events each kiosk journals while the broker is down")
    p.add_argument("--down", type=float, default=5.0, help="seconds the broker stays down")
    p.add_argument("--limit", type=float, default=600.0, help="give up after this many seconds per phase")
    p.add_argument("--broker", default="")
    p.add_argument("--data", default="")
    p.add_argument("--period", type=float, default=30.0)
    p.add_argument("--database", default="")
    p.add_argument("--worker", type=int, default=0)
    p.add_argument("--count", type=int, default=0)
    p.add_argument("--links", type=int, default=1)
    p.add_argument("--duration", type=float, default=0.0)
    args = p.parse_args()
    if args.role == "controller":
        role_controller(args)
    elif args.role == "kiosks":
        role_kiosks(args)
    else:
        print(json.dumps(orchestrate(args)))


if __name__ == "__main__":
    main()
