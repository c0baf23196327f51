"""One reader thread per port: it owns every read, hands the bytes to a codec callback, and
reconnects in-process (capped, jittered backoff) when the cable is pulled.

Drivers write through :meth:`SerialLink.write`, which paces bytes to the line rate so a
driver never runs ahead of the UART (a pseudo-terminal would otherwise swallow a whole raster
logo at once, and a real printer's buffer would overflow).
"""

from __future__ import annotations

import logging
import os
import random
import select
import threading
import time
from abc import ABC, abstractmethod
from collections.abc import Callable
from typing import Any

import serial

from device_drivers.transport import open_port, wire_time
from foundation.backoff import Backoff
from foundation.errors import DeviceTimeout, TransportError

log = logging.getLogger(__name__)


class SerialLink:
    """A port with exactly one reader thread; ``on_data(bytes)`` runs on that thread."""

    def __init__(
        self,
        url: str,
        baudrate: int,
        on_data: Callable[[bytes], None],
        *,
        on_reconnect: Callable[[], None] | None = None,
        on_lost: Callable[[str], None] | None = None,
        on_tick: Callable[[], None] | None = None,
        tick_s: float = 0.05,
        backoff: Backoff | None = None,
        sleep: Callable[[float], None] = time.sleep,
        clock: Callable[[], float] = time.monotonic,
        pace: bool = True,
        port_kwargs: dict | None = None,
    ) -> None:
        self.url = url
        self.baudrate = baudrate
        self.on_data = on_data
        self.on_reconnect = on_reconnect
        self.on_lost = on_lost
        # Housekeeping (a protocol's retries) on the reader thread: after every read, which waits
        # at most tick_s for data, and every 20 ms while reconnecting.
        self.on_tick = on_tick
        self.tick_s = tick_s
        # Its own generator: reader threads never touch the global ``random`` state.
        self.backoff = backoff or Backoff(base=0.05, cap=2.0, rand=random.Random().random)
        self.sleep = sleep
        self.clock = clock
        self.pace = pace
        self.port_kwargs = port_kwargs or {}
        self.comm_errors = 0
        self.reconnects = 0
        self.reader_cpu_s: float | None = None
        self._wlock = threading.Lock()
        self._connected = threading.Event()
        self._closing = threading.Event()
        self._line_free_at = 0.0
        self.port = open_port(url, baudrate, timeout=0.02, **self.port_kwargs)
        self._connected.set()
        self._thread = threading.Thread(target=self._run, name=f"reader:{url}", daemon=True)
        self._thread.start()

    # -- state -----------------------------------------------------------------------------------
    @property
    def connected(self) -> bool:
        return self._connected.is_set()

    def wait_connected(self, timeout: float) -> None:
        if not self._connected.wait(timeout):
            raise TransportError(f"{self.url}: not connected (unplugged?); reconnecting in the background")

    def close(self) -> None:
        self._closing.set()
        self._thread.join(timeout=2.0)
        try:
            self.port.close()
        except (OSError, serial.SerialException):
            pass
        self._connected.clear()

    # -- writing ---------------------------------------------------------------------------------
    def write(self, data: bytes, *, hold: Callable[[], bool] | None = None, hold_timeout: float = 5.0) -> None:
        """Write ``data`` paced at the line rate. ``hold()`` true means the peer asked us to pause
        (XOFF); we wait up to ``hold_timeout`` for it to clear."""
        if not self._connected.is_set():
            raise TransportError(f"{self.url}: not connected")
        with self._wlock:
            if hold is not None:
                deadline = self.clock() + hold_timeout
                while hold():
                    if self.clock() > deadline:
                        raise DeviceTimeout(f"{self.url}: device held flow control (XOFF) too long; state unknown")
                    self.sleep(0.002)
            if self.pace:
                # Keep at most one chunk in flight ahead of the line, like a UART's FIFO.
                ahead = self._line_free_at - self.clock()
                if ahead > 0.004:
                    self.sleep(ahead - 0.002)
            try:
                self.port.write(data)
            except (OSError, serial.SerialException) as exc:
                self._lost(f"write failed: {exc}")
                raise TransportError(f"{self.url}: write failed: {exc}") from None
            now = self.clock()
            self._line_free_at = max(now, self._line_free_at) + wire_time(len(data), self.baudrate)

    def drain(self) -> None:
        """Wait until everything written so far has left on the line."""
        if self.pace:
            left = self._line_free_at - self.clock()
            if left > 0:
                self.sleep(left)

    # -- reading and reconnecting ----------------------------------------------------------------
    def _lost(self, why: str) -> None:
        if self._connected.is_set() and not self._closing.is_set():
            self._connected.clear()
            self.comm_errors += 1
            log.warning("port lost", extra={"fields": {"url": self.url, "why": why}})
            if self.on_lost:
                try:
                    self.on_lost(why)
                except Exception:  # a callback bug must not kill the reader
                    log.exception("on_lost callback failed")

    def _run(self) -> None:
        try:
            self._loop()
        finally:
            # CPU this reader thread used (read, classify, hand on), for the benchmark.
            self.reader_cpu_s = time.thread_time()

    def _loop(self) -> None:
        while not self._closing.is_set():
            if not self._connected.is_set():
                self._reconnect()
                continue
            try:
                data = self._read_some()
            except (OSError, serial.SerialException, TypeError, AttributeError) as exc:
                # pyserial raises TypeError/AttributeError when the fd vanishes under it.
                self._lost(f"read failed: {exc}")
                continue
            if data:
                try:
                    self.on_data(data)
                except Exception:
                    log.exception("codec callback failed", extra={"fields": {"url": self.url}})
            self._tick()

    def _tick(self) -> None:
        if self.on_tick:
            try:
                self.on_tick()
            except Exception:
                log.exception("tick callback failed", extra={"fields": {"url": self.url}})

    def _read_some(self) -> bytes:
        """Whatever has arrived, as soon as it arrives (or b"" after a short idle wait)."""
        fd = getattr(self.port, "fd", None)
        if isinstance(fd, int) and isinstance(self.port, serial.Serial):
            # A local device file (posix): select + os.read costs half of pyserial's read() per
            # wake-up, which matters at full line rate. The port was still opened through
            # serial_for_url, with its settings; only the read path is shorter.
            ready, _, _ = select.select([fd], [], [], self.tick_s)
            if not ready:
                return b""
            data = os.read(fd, 4096)
            if not data:
                raise serial.SerialException("device reports readiness to read but returned no data")
            return data
        # Any other URL (loop://, socket://, rfc2217://): read(n) waits for n bytes or the
        # timeout, so ask for one byte, then take what is already buffered.
        # Every concrete pyserial port has in_waiting; the SerialBase stub does not declare it.
        data = self.port.read(self.port.in_waiting or 1)  # pyright: ignore[reportAttributeAccessIssue]
        if len(data) == 1:
            waiting = self.port.in_waiting  # pyright: ignore[reportAttributeAccessIssue]
            if waiting:
                data += self.port.read(waiting)
        return data

    def _reconnect(self) -> None:
        try:
            self.port.close()
        except (OSError, serial.SerialException):
            pass
        while not self._closing.is_set():
            delay = self.backoff.next_delay()
            end = self.clock() + delay
            while not self._closing.is_set() and self.clock() < end:
                self._tick()
                self.sleep(min(0.02, max(0.0, end - self.clock())))
            try:
                self.port = open_port(self.url, self.baudrate, timeout=0.02, **self.port_kwargs)
            except TransportError:
                continue
            self.backoff.reset()
            self.reconnects += 1
            self._line_free_at = 0.0
            self._connected.set()
            log.info("port reconnected", extra={"fields": {"url": self.url, "reconnects": self.reconnects}})
            if self.on_reconnect:
                # Re-sync runs on its own thread: it writes and waits for answers this thread reads.
                threading.Thread(target=self._resync, daemon=True).start()
            return

    def _resync(self) -> None:
        if self.on_reconnect is None:
            return
        try:
            self.on_reconnect()
        except Exception as exc:  # re-sync is best effort; the next operation retries
            log.warning("re-sync after reconnect failed", extra={"fields": {"url": self.url, "error": str(exc)}})


class Replies:
    """Answers the reader thread decoded, and the one request at a time that waits for them.

    The reader thread ``put``s what its codec decoded; a request ``exchange``s: it sends, then
    waits until its ``take(items)`` (called with ``cond`` held) finds the answer. A timeout counts
    a communication error in ``counters`` and raises DeviceTimeout naming the request.
    """

    def __init__(self, counters: dict[str, int], clock: Callable[[], float], sleep: Callable[[float], None]) -> None:
        self.counters = counters
        self.clock = clock
        self.sleep = sleep
        self.lock = threading.RLock()  # one request at a time; a driver may hold it over several exchanges
        self.cond = threading.Condition()
        self.items: list[Any] = []
        self._settle_until = 0.0

    def put(self, *items: Any) -> None:
        with self.cond:
            self.items += items
            self.cond.notify_all()

    def clear(self) -> None:
        with self.cond:
            self.items.clear()

    def wait_for(self, take: Callable[[list[Any]], Any], limit: float, timeout_msg: str) -> Any:
        """Wait up to ``limit`` s until ``take(items)`` returns an answer (not None). ``take`` may
        drop items (late answers to an earlier request) and raise for an answer that says no."""
        deadline = self.clock() + limit
        with self.cond:
            while True:
                answer = take(self.items)
                if answer is not None:
                    return answer
                left = deadline - self.clock()
                if left <= 0:
                    self.counters["communication_errors"] += 1
                    raise DeviceTimeout(timeout_msg)
                self.cond.wait(min(left, 0.05))

    def exchange(self, send: Callable[[], None], take: Callable[[list[Any]], Any], limit: float,
                 timeout_msg: str, *, settle: float | None = None) -> Any:
        """Under ``lock``: drop what is left over, ``send()``, then :meth:`wait_for` the answer.

        ``settle``: for answers that carry no sequence number. After a timeout, the next exchange
        first waits ``settle`` s so that a late answer lands (and is dropped) before it asks again,
        and cannot be taken for the next answer.
        """
        with self.lock:
            left = self._settle_until - self.clock()
            if left > 0:
                self.sleep(left)
            self.clear()
            send()
            try:
                return self.wait_for(take, limit, timeout_msg)
            except DeviceTimeout:
                if settle is not None:
                    self._settle_until = self.clock() + settle
                raise


class AnswerDevice(ABC):
    """What the request/answer readers (ID card reader, contactless card reader) share: a codec
    fed by the port's reader thread (``_on_data``, per driver), the answers in ``replies``, and a
    fresh codec after an unplug (a half frame from before it is worthless).

    A driver sets what its ``_on_data`` needs before calling ``__init__``: the reader thread
    starts here.
    """

    def __init__(self, url: str, baudrate: int, *, clock: Callable[[], float], sleep: Callable[[float], None],
                 backoff: Backoff | None, counters: dict[str, int], new_decoder: Callable[[], Any],
                 on_reconnect: Callable[[], None] | None = None) -> None:
        self.url = url
        self.baudrate = baudrate
        self.clock = clock
        self.sleep = sleep
        self.counters = counters
        self._new_decoder = new_decoder
        self._decoder = new_decoder()
        self.replies = Replies(counters, clock, sleep)
        self.link = SerialLink(url, baudrate, self._on_data, on_reconnect=on_reconnect, on_lost=self._on_lost,
                               backoff=backoff, sleep=sleep, clock=clock)

    @abstractmethod
    def _on_data(self, data: bytes) -> None:
        """Feed bytes from the port to the driver's codec (called on the reader thread)."""

    def _on_lost(self, why: str) -> None:
        self._decoder = self._new_decoder()

    def close(self) -> None:
        self.link.close()
