"""A paho-mqtt client that receives many small messages cheaply (the controller's fleet link).

paho-mqtt 2.x reads each packet with three or four ``recv`` calls on the socket (the command
byte, each byte of the remaining length, then the rest), goes back to ``select`` after every
packet, and for every message walks its topic-filter tree (``message_callback_add``) even when
no filter was ever registered. At province rate (880 telemetry messages a second) that was most
of the controller's receiving cost: each system call also hands the interpreter lock to the
worker thread and back.

:class:`ReceivingClient` changes only how bytes reach paho's own packet reader:

* its socket is wrapped in :class:`BufferedReads`, which takes whatever the kernel holds (up to
  64 KiB) in one ``recv`` and hands paho the bytes it asks for from that buffer. It reports the
  buffered bytes through ``pending()``, which paho's loop already asks of TLS sockets, so paho
  never waits in ``select`` while a whole packet sits in the buffer;
* ``loop_read`` goes on reading while the buffer holds more (up to ``PACKETS_PER_READ``, so
  sending and keep-alives still get their turn);
* the topic-filter walk is skipped while no filter is registered.

Packet parsing, acknowledgements, callbacks and reconnects stay paho's own code.
"""

from __future__ import annotations

from typing import Any

import paho.mqtt.client as mqtt
from paho.mqtt.enums import MQTTErrorCode
from paho.mqtt.matcher import MQTTMatcher

CHUNK = 64 * 1024  # bytes taken from the kernel in one recv
PACKETS_PER_READ = 256  # packets handled from the buffer before paho's loop looks at the rest


class BufferedReads:
    """A socket (plain or TLS) whose ``recv`` is served from one buffer filled in big reads."""

    __slots__ = ("_buf", "_pos", "_sock")

    def __init__(self, sock: Any) -> None:
        self._sock = sock
        self._buf = b""
        self._pos = 0

    def recv(self, bufsize: int) -> bytes:
        """Up to ``bufsize`` bytes, as ``socket.recv``: from the buffer if it holds any, else from
        the socket (whose errors, ``BlockingIOError`` and TLS's want-read included, pass through)."""
        if self._pos >= len(self._buf):
            data = self._sock.recv(max(bufsize, CHUNK))
            if len(data) <= bufsize:
                return data  # all of it (or b"": the peer closed)
            self._buf, self._pos = data, bufsize
            return data[:bufsize]
        out = self._buf[self._pos:self._pos + bufsize]  # a short read when fewer are buffered, as recv's
        self._pos += len(out)
        return out

    def buffered(self) -> int:
        return len(self._buf) - self._pos

    def pending(self) -> int:
        """Bytes readable without the kernel: ours, plus what a TLS socket decrypted already."""
        inner = self._sock.pending() if hasattr(self._sock, "pending") else 0
        return self.buffered() + inner

    def __getattr__(self, name: str) -> Any:
        return getattr(self._sock, name)  # send, fileno, setblocking, close, ...


class _Filters(MQTTMatcher):
    """paho's topic-filter tree, answering at once while it is empty."""

    def iter_match(self, topic: str) -> Any:
        if not self._root._children:
            return iter(())
        return super().iter_match(topic)


class ReceivingClient(mqtt.Client):
    """``paho.mqtt.client.Client`` with buffered reads (see the module's docstring)."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._on_message_filtered = _Filters()

    def _create_socket(self) -> Any:
        return BufferedReads(super()._create_socket())

    def loop_read(self, max_packets: int = 1) -> MQTTErrorCode:
        rc = super().loop_read(max_packets)
        for _ in range(PACKETS_PER_READ):
            sock = self._sock
            if rc != MQTTErrorCode.MQTT_ERR_SUCCESS or not isinstance(sock, BufferedReads) \
                    or not sock.buffered():
                break
            rc = super().loop_read(max_packets)
        return rc
