"""Driver for the kiosk's supervisor board (MicroPython, USB serial), see docs/firmware.md.

Speaks the board's link protocol through the same codec the firmware runs (firmware.link), over
a :class:`~device_drivers.serial_link.SerialLink` like every other driver: its one reader thread
pumps the codec, drives the link's retries (``on_tick``) and reconnects with capped jittered
backoff after an unplug. Commands block until the board replies (retried by the link) and raise
the project's exceptions; events (door, tamper, presence, temperature, sensor, watchdog actions,
relay switches, boot with reset cause) arrive on ``events`` and ``on_event``.

It speaks link protocol 2 and also protocol 1, which boards still on firmware 1.1.0 speak: the
link finds out which one the board answers (docs/firmware.md, "Protocol versions"), so such a
board keeps being supervised and can be flashed with ``kiosk-provision flash-firmware``.
"""

from __future__ import annotations

import base64
import hashlib
import logging
import os
import queue
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import serial

from device_drivers.serial_link import SerialLink
from firmware import link as L
from foundation.backoff import Backoff
from foundation.errors import (
    DeviceError,
    DeviceTimeout,
    KioskError,
    LocalProtocolError,
    RemoteProtocolError,
    TransportError,
)

log = logging.getLogger(__name__)

HEARTBEAT_S = 5.0
# Link protocols the host speaks: the current one, and 1 for boards not yet flashed past 1.1.0.
PROTOCOLS = (L.PROTO_V1, L.PROTO_VERSION)
# set_switch's message type (firmware 1.5.2, firmware/core/setswitch.py): not a name in
# firmware/link.py, where each name costs the board's heap at boot (see the comment there).
SET_SWITCH = 0x0F
BEACON_PATTERNS = ("ready", "busy", "degraded", "out_of_service", "off")


class SupervisorRefused(DeviceError):
    """The board understood the command and refused it; ``reason`` is the board's word for why."""

    def __init__(self, command: str, reason: str) -> None:
        super().__init__(f"supervisor refused {command}: {reason}")
        self.command = command
        self.reason = reason


@dataclass(frozen=True)
class HelloInfo:
    firmware: str
    protocol: int
    board_id: str
    reset_cause: str
    boot_count: int
    safe_mode: bool
    uptime_s: int


@dataclass(frozen=True)
class SupervisorEvent:
    """``kind``: boot, door, tamper, presence, temperature, sensor, watchdog, relay."""

    kind: str
    fields: dict[str, Any]
    received_at: float


@dataclass(frozen=True)
class SupervisorStatus:
    host: str
    hold_s: int
    relays: dict[str, str]
    safe_mode: bool
    celsius: float | None = None
    humidity: float | None = None
    sensor: str = "absent"
    door_open: bool | None = None
    tamper: bool | None = None
    presence: bool | None = None
    fan_percent: int | None = None
    beacon: str | None = None
    extra: dict[str, Any] = field(default_factory=dict)


def _file_data_reply(frame: L.Frame) -> dict[str, Any]:
    """A file_data reply (firmware/core/files.py builds it): the bytes the board holds, 4 bytes
    big-endian, as ``{"size": n}``; or a JSON refusal ``{"err": ...}``."""
    p = bytes(frame.payload)
    if p[:1] == b"{":
        return frame.body()
    if len(p) != 4:
        raise L.LinkError("payload", f"file_data reply of {len(p)} bytes")
    return {"size": int.from_bytes(p, "big")}


class _Waiter:
    def __init__(self, command: str) -> None:
        self.command = command
        self.done = threading.Event()
        self.body: dict[str, Any] | None = None
        self.error: KioskError | None = None


class SupervisorDriver:
    def __init__(
        self,
        url: str,
        *,
        baudrate: int = 115200,
        on_event: Callable[[SupervisorEvent], None] | None = None,
        backoff: Backoff | None = None,
        clock: Callable[[], float] = time.monotonic,
        retry_ms: int = 250,
        tries: int = 5,
        seq0: int | None = None,
    ) -> None:
        self.url = url
        # Every part of the kiosk that wants the board's events (the app's presence greeting, the
        # fleet agent's door/tamper events) subscribes with add_listener; on_event is the first.
        self._listeners: list[Callable[[SupervisorEvent], None]] = [on_event] if on_event else []
        self.events: queue.Queue[SupervisorEvent] = queue.Queue(maxsize=1000)
        self.clock = clock
        self._lock = threading.RLock()
        self._proto = L.Link(seq0=seq0 if seq0 is not None else int(clock() * 1000) % 255 + 1,
                             retry_ms=retry_ms, tries=tries, versions=L.V1 | L.V2)
        self._waiters: dict[int, _Waiter] = {}
        self._errors_seen = 0
        # Whether the board takes binary file_data (firmware 1.4.0 and later): None until a
        # file_open tells, again after a reconnect or a board reset (it may run other firmware).
        self._binary_files: bool | None = None
        self._hb_thread: threading.Thread | None = None
        self._hb_stop = threading.Event()
        self.baudrate = baudrate
        self.backoff = backoff or Backoff(base=0.1, cap=5.0)
        # Frames are small and stop-and-wait: no pacing, and the link polled every 20 ms.
        self.link = SerialLink(url, baudrate, self._on_data, on_reconnect=self._on_reconnect,
                               on_lost=self._on_lost, on_tick=self._service, tick_s=0.02,
                               backoff=self.backoff, clock=clock, pace=False)

    def add_listener(self, listener: Callable[[SupervisorEvent], None]) -> None:
        """Call ``listener`` (on the reader thread; it must return quickly) with every board event."""
        self._listeners.append(listener)

    @property
    def connected(self) -> bool:
        return self.link.connected

    @property
    def reconnects(self) -> int:
        return self.link.reconnects

    @property
    def binary_file_transfer(self) -> bool | None:
        """Whether the board took binary file_data in the last put_file (None: not known yet)."""
        return self._binary_files

    @property
    def _port(self) -> serial.SerialBase:
        """The pyserial port of the moment (benchmarks/firmware_bench.py counts what is written)."""
        return self.link.port

    # -- commands ------------------------------------------------------------------------------
    def hello(self, timeout: float | None = None) -> HelloInfo:
        """Version handshake: firmware version, board id, reset cause, boot count."""
        b = self._request(L.HELLO, None, "hello", timeout)
        try:
            info = HelloInfo(str(b["fw"]), int(b["proto"]), str(b["board"]), str(b["reset"]),
                             int(b["boots"]), bool(b["safe"]), int(b.get("uptime_s", 0)))
        except (KeyError, TypeError, ValueError) as exc:
            raise RemoteProtocolError(f"supervisor hello reply is malformed: {exc}") from None
        if info.protocol not in PROTOCOLS:
            raise RemoteProtocolError(f"supervisor speaks link protocol {info.protocol}, we speak "
                                      f"{' and '.join(map(str, PROTOCOLS))}")
        if info.protocol != L.PROTO_VERSION:
            # Supervised as before, but its frames lack the length check: worth a flash.
            log.warning("supervisor firmware speaks an old link protocol; run kiosk-provision flash-firmware",
                        extra={"fields": {"firmware": info.firmware, "protocol": info.protocol}})
        return info

    def heartbeat(self, timeout: float | None = None) -> dict[str, Any]:
        """Tell the board the host is alive; returns its watchdog state and hold left."""
        return self._request(L.HEARTBEAT, None, "heartbeat", timeout)

    def relay_pulse(self, name: str, off_s: float, timeout: float | None = None) -> int:
        """Power-cycle a peripheral; returns the off time in ms the board used (at least its minimum)."""
        if off_s < 0:
            raise LocalProtocolError("off_s must not be negative")
        return int(self._request(L.RELAY, {"relay": name, "off_s": off_s}, "relay_pulse", timeout)["off_ms"])

    def set_beacon(self, pattern: str, timeout: float | None = None) -> None:
        if pattern not in BEACON_PATTERNS:
            raise LocalProtocolError(f"unknown beacon pattern {pattern!r}; one of {', '.join(BEACON_PATTERNS)}")
        self._request(L.BEACON, {"pattern": pattern}, "set_beacon", timeout)

    def hold(self, seconds: int, timeout: float | None = None) -> int:
        """Maintenance hold: no power cycle for ``seconds`` (0 clears it); returns seconds held."""
        return int(self._request(L.HOLD, {"seconds": int(seconds)}, "hold", timeout)["hold_s"])

    def enter_service_mode(self, seconds: int = 600, timeout: float | None = None) -> int:
        """Ask the board to leave its loop for the REPL (for mpremote) for ``seconds``.

        The board stops supervising (no host watchdog) until it resets: ``mpremote reset`` after
        flashing, or by itself when ``seconds`` are up.
        """
        return int(self._request(L.SERVICE, {"seconds": int(seconds)}, "enter_service_mode", timeout)["service_s"])

    # -- file transfer (docs/firmware.md, "File transfer") ----------------------------------------
    def file_info(self, remote: str, timeout: float | None = None) -> tuple[int, str] | None:
        """(size, SHA-256 hex) of a file on the board, or None when it is absent."""
        b = self._request(L.FILE_INFO, {"path": remote}, "file_info", timeout)
        if b.get("sha256") is None:
            return None
        try:
            return int(b["size"]), str(b["sha256"])
        except (KeyError, TypeError, ValueError) as exc:
            raise RemoteProtocolError(f"supervisor file_info reply is malformed: {exc}") from None

    def file_sha256(self, remote: str, timeout: float | None = None) -> str | None:
        """SHA-256 (hex) of ``remote`` as the board reads it back from its flash, or None."""
        info = self.file_info(remote, timeout)
        return None if info is None else info[1]

    def put_file(self, local: str | os.PathLike[str], remote: str, *,
                 progress: Callable[[int, int], None] | None = None) -> str:
        """Copy ``local`` to ``remote`` on the board; returns its SHA-256.

        The board writes the chunks to ``remote.part``; only when the whole file is there and its
        hash matches does it rename it over ``remote``, so a cut cable or a refused chunk leaves
        the old file in place. ``progress(bytes_sent, total)`` is called after every chunk.
        Chunks go as binary ``file_data`` frames (docs/firmware.md); a board before firmware
        1.4.0 answers ``file_open`` with ``unknown_type`` and gets base64 ``file_write`` instead.
        Raises SupervisorRefused (``bad_path``, ``hash``, ``io`` ...) or DeviceTimeout.
        """
        data = Path(local).read_bytes()
        digest = hashlib.sha256(data).hexdigest()
        send = self._file_data if self._open_file(remote) else self._file_write
        off = 0
        while True:
            chunk = data[off:off + L.FILE_CHUNK]
            send(remote, off, chunk)
            off += len(chunk)
            if progress is not None:
                progress(off, len(data))
            if off >= len(data):
                break
        reply = self._request(L.FILE_COMMIT, {"path": remote, "sha256": digest}, "file_commit", None)
        if reply.get("sha256") != digest:
            raise RemoteProtocolError(f"supervisor committed {remote} with hash {reply.get('sha256')!r}, "
                                      f"expected {digest}")
        return digest

    def _open_file(self, remote: str) -> bool:
        """file_open on a board that has it: True; False for a board before 1.4.0."""
        if self._binary_files is False:
            return False
        try:
            self._request(L.FILE_OPEN, {"path": remote}, "file_open", None)
        except SupervisorRefused as exc:
            if exc.reason != "unknown_type":
                raise
            log.info("supervisor firmware has no binary file transfer; sending base64 file_write",
                     extra={"fields": {"url": self.url}})
            self._binary_files = False
            return False
        self._binary_files = True
        return True

    def _file_data(self, remote: str, off: int, chunk: bytes) -> None:
        if not chunk:
            return  # an empty file: file_open made it
        reply = self._request(L.FILE_DATA, off.to_bytes(4, "big") + chunk, "file_data", None)
        if reply.get("size") != off + len(chunk):
            raise RemoteProtocolError(f"supervisor has {reply.get('size')!r} bytes of {remote}, "
                                      f"expected {off + len(chunk)}")

    def _file_write(self, remote: str, off: int, chunk: bytes) -> None:
        self._request(L.FILE_WRITE, {"path": remote, "off": off, "data": base64.b64encode(chunk).decode()},
                      "file_write", None)

    def check_set_entry(self, set_dir: str, timeout: float | None = None) -> int | None:
        """file_check (firmware 1.5.1): the board checks the next entry of ``set_dir``'s set.txt
        against the file it has (size and SHA-256 from flash) and records it; returns how many
        entries have passed, or None for a board before 1.5.1 (``unknown_type``), whose set
        switch hashes the whole set itself. Raises SupervisorRefused (``hash``: that file is
        missing or differs; ``no_upload``: no or malformed set.txt) or DeviceTimeout."""
        try:
            reply = self._request(L.FILE_CHECK, {"set": set_dir}, "file_check", timeout)
        except SupervisorRefused as exc:
            if exc.reason != "unknown_type":
                raise
            return None
        checked = reply.get("checked")
        if not isinstance(checked, int) or isinstance(checked, bool) or checked < 0:
            raise RemoteProtocolError(f"supervisor file_check reply is malformed: {reply!r}")
        return checked

    def switch_set(self, set_dir: str, timeout: float | None = None) -> bool:
        """set_switch (firmware 1.5.2): the board points fwset.json at ``set_dir`` (on trial from
        its next boot) once file_check passed every entry of it. True when switched, False for a
        board before 1.5.2 (``unknown_type``: commit the pointer as a file instead). Raises
        SupervisorRefused (``unchecked``: file_check has not passed the whole set since its
        files last changed; the board is unchanged) or DeviceTimeout."""
        try:
            reply = self._request(SET_SWITCH, {"set": set_dir}, "set_switch", timeout)
        except SupervisorRefused as exc:
            if exc.reason != "unknown_type":
                raise
            return False
        if reply.get("set") != set_dir:
            raise RemoteProtocolError(f"supervisor set_switch reply is malformed: {reply!r}")
        return True

    def reset_board(self, timeout: float | None = None) -> None:
        """Restart the board (it replies first); it comes back with a ``boot`` event (reset "soft")."""
        self._request(L.RESET, None, "reset", timeout)

    def status(self, timeout: float | None = None) -> SupervisorStatus:
        """Sensor readings, switches, relays and watchdog state in one read."""
        b = dict(self._request(L.STATUS, None, "status", timeout))
        try:
            door = b.pop("door", None)
            return SupervisorStatus(
                host=str(b.pop("host")), hold_s=int(b.pop("hold_s")), relays=dict(b.pop("relays")),
                safe_mode=bool(b.pop("safe")), celsius=b.pop("c", None), humidity=b.pop("rh", None),
                sensor=str(b.pop("sensor", "absent")), door_open=None if door is None else door == "open",
                tamper=b.pop("tamper", None), presence=b.pop("presence", None),
                fan_percent=b.pop("fan", None), beacon=b.pop("beacon", None), extra=b,
            )
        except (KeyError, TypeError, ValueError) as exc:
            raise RemoteProtocolError(f"supervisor status reply is malformed: {exc}") from None

    def start_heartbeat(self, interval: float = HEARTBEAT_S) -> None:
        """Send heartbeats every ``interval`` s on a background thread until stop/close."""
        if self._hb_thread and self._hb_thread.is_alive():
            return
        self._hb_stop.clear()
        self._hb_thread = threading.Thread(target=self._heartbeat_loop, args=(interval,),
                                           name="supervisor-heartbeat", daemon=True)
        self._hb_thread.start()

    def stop_heartbeat(self) -> None:
        self._hb_stop.set()
        if self._hb_thread:
            self._hb_thread.join(timeout=2.0)

    def close(self) -> None:
        self.stop_heartbeat()
        self.link.close()
        with self._lock:
            for w in self._waiters.values():
                w.error = TransportError(f"{self.url}: driver closed")
                w.done.set()
            self._waiters.clear()

    def __enter__(self) -> SupervisorDriver:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    @property
    def link_errors(self) -> dict[str, int]:
        """Frames dropped as corrupt, by reason (crc, cobs, short, length, version, overflow)."""
        with self._lock:
            return dict(self._proto.decoder.errors)

    # -- internals -----------------------------------------------------------------------------
    def _now_ms(self) -> int:
        return int(self.clock() * 1000)

    def _request(self, mtype: int, body: dict[str, Any] | bytes | None, command: str,
                 timeout: float | None) -> dict:
        if not self.link.connected:
            # Refuse rather than queue: a relay pulse sent minutes later, after a replug, would
            # surprise whoever asked for it.
            raise TransportError(f"{self.url}: supervisor port not connected (reconnecting in the background)")
        waiter = _Waiter(command)
        with self._lock:
            try:
                seq = self._proto.send(mtype, body)
            except L.LinkError as exc:
                raise LocalProtocolError(f"{command}: {exc}") from None
            self._waiters[seq] = waiter
            out = self._proto.poll(self._now_ms())
        self._write(out)
        limit = timeout if timeout is not None else self._proto.retry_ms * (self._proto.tries + 1) / 1000 + 0.5
        if not waiter.done.wait(limit):
            with self._lock:
                self._waiters.pop(seq, None)
            raise DeviceTimeout(f"supervisor did not answer {command} within {limit:.1f} s; board state unknown")
        if waiter.error is not None:
            raise waiter.error
        reply = waiter.body or {}
        if "err" in reply:
            raise SupervisorRefused(command, str(reply["err"]))
        return reply

    def _write(self, data: bytes) -> None:
        # While the port is away the link keeps the frame and retries once it is back; a request
        # times out (DeviceTimeout) if it stays away.
        # The link's reader thread starts inside SerialLink() and may deliver the board's first
        # frame before __init__ has stored the link: that answer is dropped, and the board repeats
        # whatever it does not see acknowledged.
        link = self.__dict__.get("link")
        if data and link is not None:
            try:
                link.write(data)
            except TransportError:
                pass

    def _on_lost(self, why: str) -> None:
        # Another board, or the same one reflashed, may be behind the port when it comes back.
        with self._lock:
            self._proto.peer = 0
            self._binary_files = None

    def _on_data(self, data: bytes) -> None:
        events = []
        with self._lock:
            now = self._now_ms()
            for frame in self._proto.receive(data, now):
                if frame.mtype == L.EVENT:
                    self._proto.respond(frame)
                    events.append(frame)
                elif frame.mtype & L.REPLY:
                    self._reply(frame)
            out = self._proto.poll(now)
            errors = self._proto.decoder.error_count()
            if errors != self._errors_seen:
                log.warning("corrupt frames from supervisor", extra={"fields": {
                    "url": self.url, "errors": dict(self._proto.decoder.errors)}})
                self._errors_seen = errors
        self._write(out)
        for frame in events:
            self._deliver(frame)

    def _reply(self, frame: L.Frame) -> None:
        waiter = self._waiters.pop(frame.ack, None)
        if waiter is None:
            return  # a late duplicate of a reply already taken
        try:
            waiter.body = _file_data_reply(frame) if frame.mtype == L.FILE_DATA | L.REPLY else frame.body()
        except L.LinkError as exc:
            waiter.error = RemoteProtocolError(f"supervisor reply to {waiter.command}: {exc}")
        waiter.done.set()

    def _deliver(self, frame: L.Frame) -> None:
        try:
            body = frame.body()
        except L.LinkError as exc:
            log.warning("undecodable supervisor event", extra={"fields": {"error": str(exc)}})
            return
        kind = str(body.pop("ev", "unknown"))
        if kind == "boot":
            with self._lock:
                self._binary_files = None  # it may have booted other firmware
        event = SupervisorEvent(kind, body, self.clock())
        if kind in ("watchdog", "boot", "sensor"):
            log.info("supervisor event", extra={"fields": {"kind": kind, **body}})
        try:
            self.events.put_nowait(event)
        except queue.Full:
            log.warning("supervisor event queue full; event dropped", extra={"fields": {"kind": kind}})
        for listener in list(self._listeners):
            try:
                listener(event)
            except Exception:  # a consumer bug must not stop the reader thread
                log.exception("supervisor event listener failed")

    def _service(self) -> None:
        """Link housekeeping: retries due now, and requests whose tries ran out."""
        with self._lock:
            now = self._now_ms()
            out = self._proto.poll(now)
            failed, self._proto.failed = self._proto.failed, []
            if failed:
                # Not one try got through: the board may have been swapped or reflashed meanwhile,
                # so find out its protocol version again.
                self._proto.peer = 0
            for seq, _mtype in failed:
                waiter = self._waiters.pop(seq, None)
                if waiter is not None:
                    waiter.error = DeviceTimeout(
                        f"supervisor did not acknowledge {waiter.command} after {self._proto.tries} tries")
                    waiter.done.set()
        self._write(out)

    def _heartbeat_loop(self, interval: float) -> None:
        while not self._hb_stop.wait(interval):
            try:
                self.heartbeat()
            except KioskError as exc:
                log.warning("supervisor heartbeat failed", extra={"fields": {"error": str(exc)}})

    def _on_reconnect(self) -> None:
        try:
            info = self.hello()
        except KioskError as exc:
            log.warning("supervisor handshake after reconnect failed", extra={"fields": {"error": str(exc)}})
            return
        log.info("supervisor reconnected", extra={"fields": {"board": info.board_id, "reset": info.reset_cause}})
