"""The controller's receiving client (contract.mqtt_reads): buffered reads give paho exactly the
byte stream the socket carries, and against the real broker every message arrives, in order,
with paho's own filtered callbacks still working."""

from __future__ import annotations

import socket
import threading

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from contract.mqtt_client import make_client
from contract.mqtt_reads import BufferedReads, ReceivingClient
from foundation.settings import parse_broker_url
from tests.support.waiting import wait_until


@settings(max_examples=200, deadline=None)
@given(data=st.binary(min_size=1, max_size=3000), cuts=st.lists(st.integers(1, 700), min_size=1, max_size=40),
       asks=st.lists(st.integers(1, 300), min_size=1, max_size=40))
def test_reads_return_the_stream_as_sent_in_any_chunking(data, cuts, asks):
    a, b = socket.socketpair()
    try:
        b.setblocking(False)
        reader = BufferedReads(b)
        got = bytearray()
        sent = 0
        i = 0
        while len(got) < len(data):
            if sent < len(data):  # the peer writes the next piece
                piece = data[sent:sent + cuts[i % len(cuts)]]
                a.sendall(piece)
                sent += len(piece)
            ask = asks[i % len(asks)]
            i += 1
            try:
                chunk = reader.recv(ask)
            except BlockingIOError:
                continue  # nothing in the kernel yet: as a non-blocking socket says it
            assert 0 < len(chunk) <= ask
            got += chunk
            assert reader.pending() == reader.buffered() >= 0
        assert bytes(got) == data
        a.close()
        assert reader.recv(10) == b""  # the peer's close reads as the socket's
    finally:
        a.close()
        b.close()


def test_everything_else_is_the_socket_s_own():
    a, b = socket.socketpair()
    with a, b:
        reader = BufferedReads(b)
        assert reader.fileno() == b.fileno()
        reader.send(b"x")
        assert a.recv(1) == b"x"


@pytest.mark.parametrize("filtered", [False, True])
def test_a_burst_from_the_real_broker_arrives_whole_and_in_order(broker, filtered):
    url = parse_broker_url(broker.url)
    sub = make_client("reads-sub", url, many_messages=True)
    assert isinstance(sub, ReceivingClient)
    got: list[bytes] = []
    other: list[bytes] = []
    done = threading.Event()

    def on_message(c, userdata, msg):
        got.append(bytes(msg.payload))

    sub.on_message = on_message
    if filtered:  # paho's own per-filter callbacks still go through its filter tree
        sub.message_callback_add("reads/other", lambda c, u, m: other.append(bytes(m.payload)))
    sub.on_subscribe = lambda *a: done.set()
    sub.connect(url.host, url.port)
    sub.loop_start()
    pub = make_client("reads-pub", url)
    try:
        sub.subscribe([("reads/#", 0)])
        assert done.wait(10)
        pub.connect(url.host, url.port)
        pub.loop_start()
        # Small and large payloads (a remaining length of one, two and three bytes), many per read.
        bodies = [(b"%05d" % i) * (1 if i % 3 else 40 if i % 2 else 5000) for i in range(1500)]
        for body in bodies:
            pub.publish("reads/t", body, qos=1)
        pub.publish("reads/other", b"filtered", qos=1)
        expected = bodies if filtered else [*bodies, b"filtered"]
        wait_until(lambda: len(got) >= len(expected) and (other or not filtered), 30, "every message")
        assert got == expected
        assert other == ([b"filtered"] if filtered else [])
    finally:
        pub.loop_stop()
        pub.disconnect()
        sub.loop_stop()
        sub.disconnect()
