"""The kiosk agent: the kiosk's side of the fleet link over MQTT v5.

Birth/will/clean-shutdown status, telemetry, retained device status on every change, events
through the store-and-forward journal, desired config (validate, apply, report) and signed
commands (verify, execute, exactly one result). The network loop is our own so reconnects use
capped, jittered backoff (many kiosks coming back after a broker restart must not stampede).

The embedding runtime passes ``actions`` (see ``KioskActions`` in ``runtime.py``) that carry out
commands and config on the real kiosk.
"""

from __future__ import annotations

import logging
import queue
import sqlite3
import threading
import time
import uuid
from collections.abc import Callable, Mapping
from typing import Any, Protocol

import paho.mqtt.client as mqtt
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties

from contract import commands, desired_config, device_status, payloads, signing, vocab
from contract import topics as fleet
from contract.device_status import DeviceStatus
from contract.mqtt_client import failure_reason, make_client
from foundation.backoff import Backoff
from foundation.errors import BrokerUnavailable, CommandRejected, ConfigError, KioskError
from foundation.settings import KioskConfig
from kiosk_ui.agent import resend_rule, telemetry
from kiosk_ui.agent.event_sender import ACK_WAIT, EventSender, journal_event
from kiosk_ui.agent.journal import Journal
from kiosk_ui.agent.updates import UpdateRunner, UpdateSteps

log = logging.getLogger(__name__)

VERSION = "0.2.0"
AGENT_APPLIES = {"telemetry_interval"}  # desired-config keys the agent applies by itself
# A kiosk must be online again within 30 s of its link's return (issue 17): the longest wait
# between attempts plus a TLS connect must stay under that. The soak found 30 s too long.
RECONNECT_CAP = 25.0


class Actions(Protocol):
    def execute(self, name: str, args: dict[str, Any]) -> tuple[Any, Callable[[], None] | None]: ...
    def apply_config(self, config: dict[str, Any]) -> None: ...


class KioskAgent:
    def __init__(self, config: KioskConfig, *, clock: Callable[[], float] = time.time,
                 device_status: Callable[[], Mapping[str, DeviceStatus | dict[str, Any]]] | None = None, actions: Actions | None = None,
                 backoff: Backoff | None = None, max_events: int = 10_000, device_poll: float = 1.0,
                 extra_telemetry: Callable[[], dict[str, Any]] | None = None, updater: UpdateSteps | None = None,
                 health: Any = None, ack_wait: float = ACK_WAIT,
                 monotonic: Callable[[], float] = time.monotonic) -> None:
        self.config = config
        self.clock = clock
        self.boot_id = uuid.uuid4().hex
        self.started = time.monotonic()
        self.device_status = device_status or (lambda: {})
        self.actions = actions
        self.backoff = backoff or Backoff(base=0.5, cap=RECONNECT_CAP)
        self.device_poll = device_poll
        self.extra_telemetry = extra_telemetry or (lambda: {})
        self.journal = Journal(config.data_dir / "agent-journal.sqlite3", max_events=max_events)
        self.mode = self.journal.get("mode", "normal")
        self.applied: dict[str, Any] = self.journal.get("applied", {"version": 0, "config": {}})
        self.reported: dict[str, Any] = self.journal.get("reported", {})
        self._last_order_ts = float(self.journal.get("birth_ts", 0.0) or 0.0)  # the last ts of a retained report (births journal it)
        self.telemetry_interval = float(self.applied["config"].get("telemetry_interval",
                                                                    config.telemetry_interval))
        self.public_key = signing.parse_public_key(config.controller_public_key) \
            if config.controller_public_key else None
        self.seq = 0
        self._seq_lock = threading.Lock()
        self._devices: dict[str, DeviceStatus] = {}
        self._stop = threading.Event()
        self._connected = threading.Event()
        self._wake = threading.Event()
        self.ack_wait = ack_wait
        self.monotonic = monotonic
        # The journal's sending side (sender thread; paho's thread and the command thread hand over).
        self.sender = EventSender(self.journal, lambda t, p: self.client.publish(t, p, *fleet.FLAGS["events"]),
                                  ack_wait=ack_wait, monotonic=monotonic)
        self._gen = 0
        self._controller_online: bool | None = None
        self._controller_reads = (1, 1)  # the contract version the controller says it reads
        # Telemetry on a metered link (contract 1.2): what the controller holds of our telemetry,
        # the connection it was sent on, how many deltas since the last full snapshot, and the
        # connection our topic alias was set up on (aliases live as long as one connection).
        self._tel_held: dict[str, Any] = {}
        self._tel_gen = -1
        self._tel_since_full = 0
        self._alias_max = 0
        self._alias_gen = -1
        self._inbox: queue.Queue[mqtt.MQTTMessage | None] = queue.Queue()
        # Other parts of the kiosk (the app's service client) share this one connection: their topics
        # are handled on paho's thread, so an answer never waits behind a slow command.
        self._routes: dict[str, Callable[[mqtt.MQTTMessage], None]] = {}
        self._routes_qos: dict[str, int] = {}
        self.controller_listeners: list[Callable[[bool], None]] = []
        self._cpu = telemetry.cpu_times()
        # The health window of a release on trial waits for "broker" (kiosk_ui/update_hooks.py).
        self.health = health
        self.updates = UpdateRunner(config.kiosk_id, updater, self._publish_update_state, clock=clock,
                                    last=self.journal.get("update_state", {})) if updater is not None else None
        c = config
        self.client = make_client(f"kiosk-{c.kiosk_id}", c.broker,
                                  ca_file=c.ca_file, cert_file=c.cert_file, key_file=c.key_file)
        self.stamp: int | None = None  # this connection's (payloads.connection_stamp); set before each connect
        self.client.on_connect = self._on_connect
        self.client.on_disconnect = self._on_disconnect
        self.client.on_publish = self._on_publish
        self.client.on_message = self._on_message
        # Only the network thread may touch the socket. Without a loop_start() thread, paho writes a
        # publish from the caller's thread, while _network reads: concurrent use of one TLS socket
        # breaks its records ("bad record mac") and the broker drops the kiosk. With this hook set,
        # paho queues the packet and wakes _network's loop(), which writes it.
        self.client.on_socket_register_write = lambda *_: None

    def _topic(self, kind: str) -> str:
        return fleet.topic(self.config.kiosk_id, kind)

    @property
    def connected(self) -> bool:
        return self._connected.is_set()

    @property
    def controller_online(self) -> bool:
        """Connected, and the controller's retained presence says it is online."""
        return self.connected and self._controller_online is True

    @property
    def controller_acks(self) -> bool:
        """Whether the controller's presence says it acknowledges events (held until it does)."""
        return self.sender.controller_acks

    def route(self, topic_name: str, handler: Callable[[mqtt.MQTTMessage], None], qos: int) -> None:
        """Subscribe to one more topic of this kiosk (now and after every reconnect) and hand its
        messages to ``handler`` on the network thread; the handler must return quickly."""
        self._routes[topic_name] = handler
        self._routes_qos[topic_name] = qos
        if self.connected:
            self.client.subscribe(topic_name, qos)

    def reload_desired(self) -> None:
        """Unsubscribe and subscribe again: the broker re-sends the retained desired config."""
        desired = self._topic("config/desired")
        self.client.unsubscribe(desired)
        self.client.subscribe(desired, fleet.FLAGS["config/desired"][0])

    def publish(self, topic_name: str, payload: bytes, qos: int, properties: Any = None) -> mqtt.MQTTMessageInfo:
        return self.client.publish(topic_name, payload, qos, False, properties=properties)

    def _on_message(self, client, userdata, msg: mqtt.MQTTMessage) -> None:
        if msg.topic == self._topic("events/ack"):
            self._on_events_ack(bytes(msg.payload))
            return
        handler = self._routes.get(msg.topic)
        if handler is None:
            self._inbox.put(msg)
            return
        try:
            handler(msg)
        except Exception:  # noqa: BLE001 - a bad message must not stop the network thread
            log.exception("failed to handle %s", msg.topic[:120])

    def _set_controller_online(self, online: bool | None) -> None:
        previous, self._controller_online = self._controller_online, online
        if bool(previous) != bool(online):
            for listener in self.controller_listeners:
                listener(bool(online))

    # -- retained state ---------------------------------------------------------------------------
    def birth(self) -> dict[str, Any]:
        # The controller orders births by their stamp (a late redelivered birth must not undo a
        # newer one), so the stamp never goes back, not even when the wall clock is stepped back
        # (NTP after a long time offline, a technician); kept in the journal across restarts.
        ts = self._order_ts()
        try:
            self.journal.put("birth_ts", ts)
        except sqlite3.OperationalError as exc:  # a full disk: the stamp in memory still holds
            log.warning("birth stamp not kept: %s", exc)
        return payloads.birth(self.config.kiosk_id, mode=self.mode, boot_id=self.boot_id, site=self.config.site,
                              versions={"agent": VERSION, "contract": fleet.VERSION, **self._release()},
                              devices=list(self._devices), ts=ts, stamp=self.stamp)

    def _order_ts(self) -> float:
        """The kiosk's clock for a retained report (birth, device status, config report): never
        behind one it already sent, so the controller instances keep the newer of two reports
        (controller/report_order.py) even when the wall clock steps back."""
        self._last_order_ts = max(self.clock(), self._last_order_ts + 0.001)
        return self._last_order_ts

    def _release(self) -> dict[str, str]:
        """The release this process runs (roll-outs pick kiosks on an older one)."""
        version = getattr(self.health, "version", "")
        return {"release": version} if version else {}

    def _publish_retained(self) -> None:
        self.client.publish(self._topic("status"), fleet.encode(self.birth()), *fleet.FLAGS["status"])
        for name, st in self._devices.items():
            self._publish_device(name, st)
        if self.reported:
            self.client.publish(self._topic("config/reported"), fleet.encode(self.reported),
                                *fleet.FLAGS["config/reported"])
        if self.updates is not None and self.updates.last:
            self.client.publish(self._topic("update/state"), fleet.encode(self.updates.last),
                                *fleet.FLAGS["update/state"])

    def _publish_update_state(self, body: dict[str, Any]) -> None:
        """Retained, and kept in the journal: re-published after every reconnect and restart."""
        if self._stop.is_set():
            # The agent is stopping (its journal closes): the next agent reports from state.json.
            log.warning("update state %s not reported: the agent is stopping", body.get("state"))
            return
        self.journal.put("update_state", body)
        if body.get("state") in ("rolled_back", "failed", "deferred"):
            self.emit(f"update_{body['state']}", {"version": body["version"], "reason": body.get("reason", "")})
        if self.connected:
            self.client.publish(self._topic("update/state"), fleet.encode(body), *fleet.FLAGS["update/state"])

    def _publish_device(self, name: str, st: DeviceStatus) -> None:
        body = device_status.body(self.config.kiosk_id, st, ts=self._order_ts(), boot_id=self.boot_id)
        self.client.publish(self._topic(f"devices/{name}"), fleet.encode(body), *fleet.FLAGS["devices"])

    def set_mode(self, mode: str) -> None:
        if mode not in vocab.MODES:
            raise ConfigError(f"must be one of {', '.join(vocab.MODES)}, got {mode!r}", field="mode")
        if mode != self.mode:
            old, self.mode = self.mode, mode
            self.journal.put("mode", mode)
            self.emit("mode_changed", {"from": old, "to": mode})
            if self.connected:
                self.client.publish(self._topic("status"), fleet.encode(self.birth()), *fleet.FLAGS["status"])

    # -- events (store and forward) ---------------------------------------------------------------
    def emit(self, event_type: str, fields: dict[str, Any] | None = None) -> str:
        """Journal one event and wake the sender; returns its id. Never put resident data here."""
        event_id = uuid.uuid4().hex
        self._overflowed(self._journal_event(event_id, event_type, fields or {}))
        self._wake.set()
        return event_id

    def _overflowed(self, dropped: int) -> None:
        if dropped:
            log.warning("event journal full: dropped %d oldest events", dropped)
            self._journal_event(uuid.uuid4().hex, "journal_overflow",
                                {"dropped": dropped, "max_events": self.journal.max_events})

    def _journal_event(self, event_id: str, event_type: str, fields: dict[str, Any]) -> int:
        with self._seq_lock:
            self.seq += 1
            seq = self.seq
        return journal_event(self.journal, self.config.kiosk_id, event_id=event_id, boot_id=self.boot_id,
                             seq=seq, ts=self.clock(), type=event_type, fields=fields)

    def _on_publish(self, client, userdata, mid, reason_code, properties) -> None:
        # Called on paho's thread with paho's locks held: only hand the mid over, take no lock.
        self.sender.puback(mid)
        self._wake.set()

    def _on_events_ack(self, payload: bytes) -> None:
        """The controller committed these events (paho's thread: parse, hand over, take no lock)."""
        try:
            ids = payloads.parse_events_ack(fleet.decode(payload))
        except KioskError as exc:
            log.warning("ignored a bad events/ack: %s", exc)
            return
        self.sender.committed(ids)
        self._wake.set()

    def _pump_journal(self) -> None:
        """Sender thread only (``EventSender.pump``)."""
        self.sender.pump(gen=self._gen, connected=self.connected, presence=self._controller_online)

    # -- connection ------------------------------------------------------------------------------
    def _on_connect(self, client, userdata, flags, reason_code, properties) -> None:
        if reason_code.is_failure:
            log.error("broker refused connection: %s", reason_code)
            return
        self.backoff.reset()
        self._alias_max = int(getattr(properties, "TopicAliasMaximum", 0) or 0) if properties else 0
        self._gen += 1
        self._set_controller_online(None)
        self._connected.set()
        # Subscribing again also fetches the retained desired config: the full state after every reconnect.
        client.subscribe(fleet.subscriptions_for_kiosk(self.config.kiosk_id) + list(self._routes_qos.items()))
        self._publish_retained()
        self._wake.set()
        if self.health is not None:
            self.health.report("broker")
        log.info("online", extra={"fields": {"kiosk": self.config.kiosk_id}})

    def _reconnect(self) -> None:
        """Connect with a new connection stamp, in the will registered now and in the birth sent on
        it: the controller then ignores this connection's will should it come after a newer birth
        (a broker publishes the old session's will on take-over, and another controller instance
        may handle it late). The last stamp is journaled, so stamps grow across reboots too."""
        try:
            last = max(self.stamp or 0, int(self.journal.get("stamp") or 0))
        except sqlite3.Error as exc:
            last = self.stamp or 0
            log.warning("last connection stamp not read: %s", exc)
        self.stamp = payloads.connection_stamp(self.clock(), last)
        try:
            self.journal.put("stamp", self.stamp)
        except sqlite3.Error as exc:  # a full or broken disk must not stop the kiosk reconnecting
            log.warning("connection stamp not journaled: %s", exc)
        self.client.will_set(self._topic("status"),
                             fleet.encode(payloads.offline(self.config.kiosk_id, self.boot_id, "lwt", self.stamp)),
                             *fleet.FLAGS["status"])
        self.client.reconnect()

    def _on_disconnect(self, client, userdata, flags, reason_code, properties) -> None:
        self._connected.clear()
        self._set_controller_online(None)
        if not self._stop.is_set():
            log.warning("lost broker connection: %s; reconnecting", reason_code)

    def _network(self) -> None:
        """Our own loop: paho's reconnect has no jitter, and a fleet must not reconnect in step."""
        while not self._stop.is_set():
            rc = self.client.loop(timeout=0.2)
            if rc == mqtt.MQTT_ERR_SUCCESS or self._stop.is_set():
                continue
            self._connected.clear()
            delay = self.backoff.next_delay()
            self._say(f"broker {self.config.broker} not reachable: {self._why or mqtt.error_string(rc)}; "
                      f"retrying in {delay:.1f} s")
            if self._stop.wait(delay):
                break
            try:
                self._reconnect()
                self._why = ""
            except (OSError, mqtt.WebsocketConnectionError) as exc:
                self._why = failure_reason(exc)

    def start(self, say: Callable[[str], None] | None = None, *, wait: float = 0.0) -> None:
        """Connect (retrying with backoff in the background) and start the agent's threads.

        With ``wait`` > 0, raise BrokerUnavailable if not online within that many seconds.
        """
        self.emit("boot", {"agent": VERSION})
        self._say = say or log.warning
        self._why = ""
        try:
            self.client.connect_async(self.config.broker.host, self.config.broker.port,
                                      keepalive=self.config.keepalive, clean_start=True)
            self._reconnect()
        except (OSError, mqtt.WebsocketConnectionError) as exc:
            self._why = failure_reason(exc)
        self._threads = [threading.Thread(target=t, name=n, daemon=True) for t, n in (
            (self._network, "agent-net"), (self._sender, "agent-sender"), (self._work, "agent-commands"),
            (self._periodic, "agent-telemetry"))]
        for t in self._threads:
            t.start()
        if wait and not self._connected.wait(wait):
            raise BrokerUnavailable(f"broker {self.config.broker} not reachable within {wait:.0f} s")

    def _sender(self) -> None:
        while not self._stop.is_set():
            self._wake.wait(0.5)
            self._wake.clear()
            try:
                self._overflowed(self.journal.flush_held())  # what a full disk held back, first
                self._pump_journal()
            except Exception:  # noqa: BLE001 - keep forwarding; the journal keeps the events
                log.exception("journal pump failed")

    def _periodic(self) -> None:
        next_telemetry = next_poll = 0.0
        while not self._stop.is_set():
            now = time.monotonic()
            if now >= next_poll:
                self.poll_devices()
                if self.updates is not None:
                    self.updates.poll()
                next_poll = now + self.device_poll
            if now >= next_telemetry and self.connected:
                try:
                    self._send_telemetry()
                except KioskError as exc:
                    log.warning("telemetry not sent: %s", exc)
                next_telemetry = now + self.telemetry_interval
            self._stop.wait(max(0.05, min(next_poll, next_telemetry if self.connected else now + 0.5) - now))

    def _send_telemetry(self) -> None:
        """A full snapshot on each new connection, to a controller that does not read deltas, and
        every ``FULL_EVERY``-th time; otherwise only what changed. Sent under a topic alias where
        the broker grants one, so the topic name crosses the link once per connection."""
        gen, full = self._gen, self.telemetry()
        send_full = (self._controller_reads < payloads.DELTA_SINCE or self._tel_gen != gen
                     or self._tel_since_full + 1 >= payloads.FULL_EVERY)
        body = full if send_full else payloads.telemetry_delta(self._tel_held, full)
        topic_name, props = self._topic("telemetry"), None
        if self._alias_max >= 1:
            props = Properties(PacketTypes.PUBLISH)
            props.TopicAlias = 1
            if self._alias_gen == gen:
                topic_name = ""
        info = self.client.publish(topic_name, fleet.encode(body), *fleet.FLAGS["telemetry"], properties=props)
        if info.rc != mqtt.MQTT_ERR_SUCCESS:
            return
        self._alias_gen = gen
        self._tel_gen = gen
        self._tel_since_full = 0 if send_full else self._tel_since_full + 1
        self._tel_held = payloads.merge_telemetry(self._tel_held, payloads.parse_telemetry(body)).to_dict()

    def poll_devices(self) -> None:
        """Publish a device's retained status when it changes, and journal the change as an event."""
        try:
            current = self.device_status()
        except Exception:  # noqa: BLE001 - a driver bug must not stop the agent
            log.exception("device status failed")
            return
        for name, raw in current.items():
            try:
                # The runtime hands models; the device manager's status dict carries the same fields.
                st = raw if isinstance(raw, DeviceStatus) else device_status.parse(raw)
            except KioskError as exc:
                log.error("device status of %s not publishable: %s", name, exc)
                continue
            old = self._devices.get(name)
            if old != st:
                self._devices[name] = st
                if self.connected:
                    self._publish_device(name, st)
                self.emit("device_state", {"device": name, "state": st.state, "fault": st.fault,
                                           "previous": old.state if old else None})

    def telemetry(self) -> dict[str, Any]:
        cur = telemetry.cpu_times()
        cpu = telemetry.cpu_percent(self._cpu, cur)
        self._cpu = cur
        return payloads.telemetry(
            self.config.kiosk_id, ts=self.clock(), uptime=round(time.monotonic() - self.started, 1), cpu=cpu,
            memory=telemetry.memory_percent(), disk=telemetry.disk_percent(self.config.data_dir),
            temperature=telemetry.soc_temperature(),
            enclosure_temperature=self.extra_telemetry().get("enclosure_temperature"),
            devices={name: st.state for name, st in self._devices.items()}, queue_depth=self.journal.depth(),
            mode=self.mode)

    # -- incoming: desired config, commands, controller presence -----------------------------------
    def _work(self) -> None:
        while not self._stop.is_set():
            try:
                msg = self._inbox.get(timeout=0.5)
            except queue.Empty:
                continue
            if msg is None:
                continue
            payload = bytes(msg.payload)  # paho may hand a bytearray; the parsers take bytes
            try:
                if msg.topic == fleet.CONTROLLER_STATUS:
                    self._controller_status(payload)
                elif msg.topic == self._topic("config/desired"):
                    self.apply_desired(payload)
                elif "/cmd/" in msg.topic:
                    self.handle_command(msg.topic, payload)
            except Exception:  # noqa: BLE001 - one bad message must not stop the kiosk
                log.exception("failed to handle %s", msg.topic[:120])

    def _controller_status(self, payload: bytes) -> None:
        try:
            body = fleet.decode(payload)
            online = payloads.parse_controller_status(body)
        except KioskError:
            return
        previous = self._controller_online
        if online:
            self._controller_reads = payloads.controller_reads(body)
        self._set_controller_online(online)
        if resend_rule.came_back(previous, online):
            # The controller came back (maybe with a fresh store): tell it the retained state again,
            # telemetry included (a delta needs the snapshot it applies to); the events too, unless
            # the broker queued them for it (then its acknowledgements get a whole wait from now).
            self._tel_gen = -1
            self._publish_retained()
        self.sender.presence(previous, online, body)
        self._wake.set()

    def apply_desired(self, payload: bytes) -> None:
        if not payload:
            return  # retained message cleared
        body: dict[str, Any] = {}
        try:
            body = fleet.decode(payload)
            signing.verify_desired(self.public_key, body, self.config.kiosk_id)
            version = payloads.parse_config_desired(body).version
            config = desired_config.validate(body.get("config"))
        except (KioskError, ConfigError) as exc:
            version = body.get("version")
            self._report({"version": version if isinstance(version, int) else None, "status": "rejected",
                          "reason": str(exc)[:300], "config": self.applied["config"]})
            self.emit("config_rejected", {"version": version if isinstance(version, int) else None,
                                          "reason": str(exc)[:300]})
            return
        unsupported = sorted(set(config) - AGENT_APPLIES) if self.actions is None else []
        if unsupported:
            # Without a runtime nothing here could honour these keys: say so rather than report success.
            self._report({"version": version, "status": "rejected", "config": self.applied["config"],
                          "reason": f"no kiosk runtime here applies {', '.join(unsupported)}"})
            return
        if version != self.applied["version"] or config != self.applied["config"]:
            if self.actions is not None:
                try:
                    self.actions.apply_config(config)
                except KioskError as exc:
                    self._report({"version": version, "status": "rejected", "reason": str(exc)[:300],
                                  "config": self.applied["config"]})
                    return
            self.applied = {"version": version, "config": config}
            self.journal.put("applied", self.applied)
            self.telemetry_interval = float(config.get("telemetry_interval", self.config.telemetry_interval))
            self.emit("config_applied", {"version": version})
        self._report({"version": version, "status": "applied", "config": config})

    def _report(self, body: dict[str, Any]) -> None:
        self.reported = payloads.config_reported(self.config.kiosk_id, **body, ts=self._order_ts(),
                                                 boot_id=self.boot_id)
        self.journal.put("reported", self.reported)
        self.client.publish(self._topic("config/reported"), fleet.encode(self.reported),
                            *fleet.FLAGS["config/reported"])

    def handle_command(self, topic_name: str, payload: bytes) -> dict[str, Any]:
        """Verify and execute one command; publish and return exactly one result."""
        kiosk_id = self.config.kiosk_id
        after: Callable[[], None] | None = None
        body_id = commands.peek_id(payload)
        name = topic_name.rsplit("/", 1)[-1]
        try:
            body = commands.parse(topic_name, payload, kiosk_id)
            body_id = body["id"]
            commands.verify(body, self.public_key, self.clock(), self.journal.first_sight)
            args = body.get("args", {})
            commands.check_args(name, args)
            if name in ("update", "update_rollback"):
                if self.updates is None:
                    raise KioskError("no updater is configured on this kiosk")
                # update runs in the background and reports on update/state
                data = self.updates.start(body_id, args) if name == "update" else self.updates.abort(args["version"])
            elif self.actions is None:
                raise KioskError("this kiosk has no command runtime")
            else:
                data, after = self.actions.execute(name, args)
            res = commands.result(body_id, kiosk_id, "ok", data=data)
        except CommandRejected as exc:
            status = "expired" if exc.reason == "expired" else "rejected"
            res = commands.result(body_id, kiosk_id, status, reason=exc.reason, error=str(exc))
        except KioskError as exc:
            res = commands.result(body_id, kiosk_id, "error", error=str(exc))
        log.info("command", extra={"fields": {"name": name, "id": body_id, "status": res["status"],
                                              "reason": res.get("reason", "")}})
        info = self.client.publish(fleet.topic(kiosk_id, f"cmd/{name}/result"), fleet.encode(res),
                                   *fleet.FLAGS["cmd/result"])
        if after is not None:
            # Reboot and restart act only once their result has left the kiosk.
            try:
                info.wait_for_publish(5)
            except (RuntimeError, ValueError):
                pass
            after()
        return res

    def stop(self) -> None:
        """Clean stop: say ``shutdown`` (retained) so the fleet knows this was on purpose."""
        if self.connected:
            info = self.client.publish(
                self._topic("status"),
                fleet.encode(payloads.offline(self.config.kiosk_id, self.boot_id, "shutdown", self.stamp)),
                *fleet.FLAGS["status"],
            )
            try:
                info.wait_for_publish(3)
            except (RuntimeError, ValueError):
                pass  # connection dropped meanwhile: the will reports offline instead
        self._stop.set()
        self._wake.set()
        if self.updates is not None:
            self.updates.stopped.set()
        self.client.disconnect()
        for t in getattr(self, "_threads", []):
            t.join(3)
        self.journal.close()
