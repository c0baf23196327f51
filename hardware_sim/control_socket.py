"""A simulator's control socket: the stdin control lines, also on a unix socket anyone may open.

The process that started a simulator owns its stdin, so nobody else could cause a fault. With
``--control PATH`` the simulator also listens on a unix stream socket at PATH (0600) that takes
the same JSON lines as stdin and answers each with one JSON line on the same connection
(``{"ok": true, ...}`` or ``{"ok": false, "error": "..."}``). ``send`` is the client side, used by
``scripts/demo-fault``.

Unix socket paths are limited to 107 bytes; a longer PATH (deep test folders) is reached through
the ``/proc/self/fd`` name of its folder, which Linux resolves like the real path.
"""

from __future__ import annotations

import contextlib
import json
import os
import socket
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from foundation.errors import TransportError

MAX_LINE = 64 * 1024  # a control line is small; anything longer is not one
SEND_TIMEOUT = 1.0


@contextlib.contextmanager
def _address(path: Path) -> Iterator[str]:
    """A name for ``path`` short enough for a unix socket address."""
    if len(os.fsencode(str(path))) < 100:
        yield str(path)
        return
    fd = os.open(path.parent, os.O_PATH | os.O_DIRECTORY)
    try:
        yield f"/proc/self/fd/{fd}/{path.name}"
    finally:
        os.close(fd)


class ControlListener:
    """The server side, pumped by the simulator's own selector loop (no threads)."""

    def __init__(self, path: Path, handle: Callable[[str], dict[str, Any]]) -> None:
        self.path = Path(path)
        self.handle = handle
        if self.path.is_socket():
            self.path.unlink()  # left behind by a simulator that was killed
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        old = os.umask(0o177)  # 0600 from the start: the socket can unplug the kiosk's devices
        try:
            with _address(self.path) as addr:
                self.sock.bind(addr)
        finally:
            os.umask(old)
        self.sock.listen(8)
        self.sock.setblocking(False)
        self.buffers: dict[socket.socket, bytearray] = {}

    def accept(self) -> socket.socket | None:
        try:
            conn, _ = self.sock.accept()
        except BlockingIOError:
            return None
        conn.setblocking(False)
        self.buffers[conn] = bytearray()
        return conn

    def readable(self, conn: socket.socket) -> bool:
        """Read from ``conn`` and answer each complete line; False once the peer is gone."""
        try:
            data = conn.recv(4096)
        except BlockingIOError:
            return True
        except OSError:
            data = b""
        buf = self.buffers[conn]
        buf += data
        while b"\n" in buf:
            line, _, rest = bytes(buf).partition(b"\n")
            buf[:] = rest
            if line.strip() and not self._answer(conn, self.handle(line.decode("utf-8", "replace"))):
                data = b""  # the client stopped reading: drop it
                break
        if len(buf) > MAX_LINE:
            self._answer(conn, {"ok": False, "error": f"control line longer than {MAX_LINE} bytes"})
            data = b""
        if not data:
            self.close_conn(conn)
            return False
        return True

    @staticmethod
    def _answer(conn: socket.socket, reply: dict[str, Any]) -> bool:
        """Send one reply line; False if the client is gone or does not read it within a second
        (a client that stops reading must not stall the device)."""
        conn.settimeout(SEND_TIMEOUT)
        try:
            conn.sendall((json.dumps(reply, ensure_ascii=False) + "\n").encode())
            return True
        except OSError:  # TimeoutError included
            return False
        finally:
            conn.setblocking(False)

    def close_conn(self, conn: socket.socket) -> None:
        self.buffers.pop(conn, None)
        conn.close()

    def close(self) -> None:
        for conn in list(self.buffers):
            self.close_conn(conn)
        self.sock.close()
        with contextlib.suppress(FileNotFoundError):
            self.path.unlink()


def send(path: Path, cmd: dict[str, Any], timeout: float = 5.0) -> dict[str, Any]:
    """Send one control command to the simulator listening at ``path``; its JSON answer."""
    path = Path(path)
    if not path.is_socket():
        raise TransportError(f"no simulator control socket at {path} (is the kiosk running, simulated?)")
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as s:
        s.settimeout(timeout)
        try:
            with _address(path) as addr:
                s.connect(addr)
            s.sendall((json.dumps(cmd) + "\n").encode())
            buf = b""
            while b"\n" not in buf:
                chunk = s.recv(4096)
                if not chunk:
                    break
                buf += chunk
        except OSError as exc:
            raise TransportError(f"simulator at {path} did not answer: {exc}") from None
    if b"\n" not in buf:
        raise TransportError(f"simulator at {path} closed the connection without an answer")
    reply = json.loads(buf.partition(b"\n")[0])
    if not isinstance(reply, dict):
        raise TransportError(f"simulator at {path} answered {reply!r}, not an object")
    return reply
