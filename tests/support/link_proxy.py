"""A controllable TCP proxy on loopback: counts bytes at the socket and shapes the link.

Put it between a kiosk and the broker (TLS passes through untouched) to measure what the kiosk
costs on the wire, or to give it a rural 4G link: one-way latency, loss, a bandwidth cap, a cut
and its restore, and half-open connections. Pure asyncio, in a thread of its own, loopback only.

The link model, per direction of each connection (bytes keep their order, as TCP keeps them):

* **latency**: every chunk is delivered ``latency`` seconds after it was read (one way);
* **bandwidth**: a chunk occupies the link for ``len * 8 / bandwidth_bps`` seconds, so chunks
  queue behind each other (serialisation delay);
* **loss**: TCP never loses bytes, it retransmits them late. Each 1460-byte segment of a chunk is
  lost with probability ``loss``; a lost segment is delivered one retransmission timeout later,
  ``max(0.2 s, 2 x round trip)`` (sparse traffic gets no fast retransmit, so the RTO applies),
  and everything behind it waits too (head-of-line blocking);
* **cut**: nothing is delivered and nothing reaches a new connection (they are refused, as an
  unreachable network refuses); held bytes are delivered on ``restore`` if their connection is
  still open, as TCP retransmission would deliver them;
* **half-open**: the broker side of every open connection is closed while the kiosk side stays
  open and silent: the kiosk learns of it only from its own keepalive.

Randomness (loss) comes from a seeded ``random.Random``; time from the event loop's clock.
"""

from __future__ import annotations

import asyncio
import random
import threading
import time
from dataclasses import dataclass, field

SEGMENT = 1460
MIN_RTO = 0.2


@dataclass
class Shape:
    latency: float = 0.0  # seconds, one way
    loss: float = 0.0  # probability per segment
    bandwidth_bps: float = 0.0  # 0: unlimited

    def rto(self) -> float:
        return max(MIN_RTO, 4 * self.latency)  # 2 x the round trip of two one-way latencies


@dataclass
class Counts:
    """Bytes at the socket: ``up`` kiosk -> broker, ``down`` broker -> kiosk."""

    up: int = 0
    down: int = 0
    connections: int = 0
    refused: int = 0
    log: list[tuple[float, str, int]] = field(default_factory=list)  # (monotonic time, up/down, bytes)

    @property
    def total(self) -> int:
        return self.up + self.down


class _Pipe:
    """One direction of one connection: a delivery queue that applies the shape."""

    def __init__(self, proxy: LinkProxy, writer: asyncio.StreamWriter, direction: str) -> None:
        self.proxy = proxy
        self.writer = writer
        self.direction = direction
        self.queue: asyncio.Queue[tuple[float, bytes] | None] = asyncio.Queue()
        self.busy_until = 0.0
        self.void = False  # half-open, kiosk -> broker: read and counted, never delivered
        self.hold_open = False  # half-open, broker -> kiosk: the kiosk side is never closed
        self.task = asyncio.get_running_loop().create_task(self._deliver())

    def feed(self, data: bytes, now: float) -> None:
        shape = self.proxy.shape
        at = now + shape.latency
        if shape.loss:
            for _ in range(0, len(data), SEGMENT):
                if self.proxy.rng.random() < shape.loss:
                    at += shape.rto()
        if shape.bandwidth_bps:
            at = max(at, self.busy_until) + len(data) * 8 / shape.bandwidth_bps
        at = max(at, self.busy_until)  # in order, like TCP
        self.busy_until = at
        self.queue.put_nowait((at, data))

    async def _deliver(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            item = await self.queue.get()
            if item is None:
                break
            at, data = item
            delay = at - loop.time()
            if delay > 0:
                await asyncio.sleep(delay)
            while self.proxy.is_cut:
                await self.proxy.restored.wait()
            try:
                self.writer.write(data)
                await self.writer.drain()
            except (ConnectionError, OSError):
                break
        if not self.hold_open:
            self.writer.close()


def _quiet_cancel(loop: asyncio.AbstractEventLoop, context: dict) -> None:
    """Connections cancelled by ``stop`` are expected; anything else is reported as usual."""
    if not isinstance(context.get("exception"), asyncio.CancelledError):
        loop.default_exception_handler(context)


class LinkProxy:
    """``LinkProxy(target_port).start()`` listens on ``proxy.port`` and forwards to the target."""

    def __init__(self, target_port: int, *, target_host: str = "127.0.0.1", shape: Shape | None = None,
                 seed: int = 0, record: bool = False) -> None:
        self.target = (target_host, target_port)
        self.shape = shape or Shape()
        self.rng = random.Random(seed)
        self.counts = Counts()
        self.record = record
        self.port = 0
        self.is_cut = False
        self._loop = asyncio.new_event_loop()
        self._loop.set_exception_handler(_quiet_cancel)
        self._server: asyncio.Server | None = None
        self._conns: set[tuple[_Pipe, _Pipe]] = set()  # (up, down) of each open connection
        self._thread = threading.Thread(target=self._loop.run_forever, name="link-proxy", daemon=True)
        self.restored = asyncio.Event()

    # -- control (any thread) --------------------------------------------------------------------
    def start(self) -> LinkProxy:
        self._thread.start()
        self._call(self._listen())
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._call(self._close_all())
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(5)

    def set_shape(self, shape: Shape) -> None:
        self.shape = shape

    def cut(self) -> None:
        self._call(self._set_cut(True))

    def restore(self) -> None:
        self._call(self._set_cut(False))

    def half_open(self) -> None:
        """Close the broker side of every open connection; the kiosk side hears nothing."""
        self._call(self._half_open())

    def drop(self) -> None:
        """Reset every open connection on both sides (a NAT timeout, a modem reboot)."""
        self._call(self._close_conns())

    def reset_counts(self) -> Counts:
        """The counts so far, and start counting from zero."""
        old, self.counts = self.counts, Counts()
        return old

    def _call(self, coro):
        return asyncio.run_coroutine_threadsafe(coro, self._loop).result(10)

    # -- the loop's side -------------------------------------------------------------------------
    async def _listen(self) -> None:
        self._server = await asyncio.start_server(self._accept, "127.0.0.1", 0)
        self.port = self._server.sockets[0].getsockname()[1]

    async def _set_cut(self, cut: bool) -> None:
        self.is_cut = cut
        if cut:
            self.restored.clear()
        else:
            self.restored.set()

    async def _half_open(self) -> None:
        for up, down in list(self._conns):
            up.void = down.hold_open = True
            up.writer.transport.abort()

    async def _close_all(self) -> None:
        assert self._server is not None
        self._server.close()
        await self._close_conns()
        tasks = [t for t in asyncio.all_tasks() if t is not asyncio.current_task()]
        for t in tasks:
            t.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)

    async def _close_conns(self) -> None:
        for up, down in list(self._conns):
            up.writer.transport.abort()
            down.writer.transport.abort()

    async def _accept(self, kiosk_r: asyncio.StreamReader, kiosk_w: asyncio.StreamWriter) -> None:
        if self.is_cut:
            self.counts.refused += 1
            kiosk_w.transport.abort()
            return
        try:
            broker_r, broker_w = await asyncio.open_connection(*self.target)
        except OSError:
            self.counts.refused += 1
            kiosk_w.transport.abort()
            return
        self.counts.connections += 1
        up, down = _Pipe(self, broker_w, "up"), _Pipe(self, kiosk_w, "down")
        pair = (up, down)
        self._conns.add(pair)
        try:
            await asyncio.gather(self._pump(kiosk_r, up), self._pump(broker_r, down))
        finally:
            self._conns.discard(pair)

    async def _pump(self, reader: asyncio.StreamReader, pipe: _Pipe) -> None:
        loop = asyncio.get_running_loop()
        while True:
            try:
                data = await reader.read(65536)
            except (ConnectionError, OSError):
                data = b""
            if not data:
                pipe.queue.put_nowait(None)
                return
            if pipe.direction == "up":
                self.counts.up += len(data)
            else:
                self.counts.down += len(data)
            if self.record:
                self.counts.log.append((time.monotonic(), pipe.direction, len(data)))
            if pipe.void:
                continue
            pipe.feed(data, loop.time())
