"""The link proxy the field-link benchmarks and the soak put between a kiosk and the broker:
exact counts, bytes intact and in order, latency and loss as delay, cut/restore, half-open."""

from __future__ import annotations

import socket
import socketserver
import threading
import time

import pytest

from tests.support.link_proxy import LinkProxy, Shape
from tests.support.waiting import wait_until


class _Echo(socketserver.BaseRequestHandler):
    def handle(self) -> None:
        while data := self.request.recv(65536):
            self.request.sendall(data)
        self.server.eofs.append(time.monotonic())  # type: ignore[attr-defined]


@pytest.fixture
def echo():
    server = socketserver.ThreadingTCPServer(("127.0.0.1", 0), _Echo)
    server.daemon_threads = True
    server.eofs = []  # type: ignore[attr-defined]
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield server
    server.shutdown()
    server.server_close()


@pytest.fixture
def proxy(echo):
    p = LinkProxy(echo.server_address[1], seed=3).start()
    yield p
    p.stop()


def _connect(proxy: LinkProxy, timeout: float = 5.0) -> socket.socket:
    s = socket.create_connection(("127.0.0.1", proxy.port), timeout=timeout)
    return s


def _recv_exactly(s: socket.socket, n: int) -> bytes:
    out = b""
    while len(out) < n:
        chunk = s.recv(n - len(out))
        if not chunk:
            break
        out += chunk
    return out


def test_bytes_pass_intact_in_order_and_are_counted(proxy):
    payload = bytes(range(256)) * 40
    with _connect(proxy) as s:
        s.sendall(payload)
        assert _recv_exactly(s, len(payload)) == payload
    assert (proxy.counts.up, proxy.counts.down, proxy.counts.connections) == (len(payload), len(payload), 1)
    assert proxy.reset_counts().total == 2 * len(payload) and proxy.counts.total == 0


def test_latency_and_loss_delay_but_never_drop_or_reorder(proxy):
    proxy.set_shape(Shape(latency=0.1, loss=1.0))  # every segment lost once: one RTO late each way
    with _connect(proxy) as s:
        t0 = time.monotonic()
        for i in range(5):
            s.sendall(bytes([i]) * 10)
        got = _recv_exactly(s, 50)
        elapsed = time.monotonic() - t0
    assert got == b"".join(bytes([i]) * 10 for i in range(5))
    # Two one-way latencies plus at least one retransmission timeout (0.4 s) in each direction.
    assert elapsed >= 2 * 0.1 + 2 * Shape(latency=0.1).rto()


def test_a_cut_holds_traffic_until_restore_and_refuses_new_connections(proxy):
    with _connect(proxy) as s:
        s.sendall(b"before")
        assert _recv_exactly(s, 6) == b"before"
        proxy.cut()
        s.sendall(b"during")
        s.settimeout(0.3)
        with pytest.raises(TimeoutError):
            s.recv(10)
        with _connect(proxy) as refused:
            refused.settimeout(2)
            assert refused.recv(10) == b""  # closed at once, like an unreachable network
        assert proxy.counts.refused == 1
        proxy.restore()
        s.settimeout(5)
        assert _recv_exactly(s, 6) == b"during"


def test_half_open_closes_the_far_side_and_leaves_the_kiosk_side_silent(proxy, echo):
    with _connect(proxy) as s:
        s.sendall(b"x")
        assert _recv_exactly(s, 1) == b"x"
        proxy.half_open()
        wait_until(lambda: echo.eofs, 10, "the broker side to see its connection end")
        s.sendall(b"into the void")
        s.settimeout(0.5)
        with pytest.raises(TimeoutError):
            s.recv(10)  # no answer, and no close either: only a keepalive can tell
        # The proxy's own thread reads (and counts) what the kiosk sent, a moment after sendall.
        wait_until(lambda: proxy.counts.up == 1 + len(b"into the void"), 10, "the kiosk's bytes counted")
