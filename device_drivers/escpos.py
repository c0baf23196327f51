"""ESC/POS receipt-printer protocol, sans-IO: command builders (host side) and an incremental
parser of the host's byte stream (device side, used by the simulator and byte-exact tests).

Chinese-market printers power up in Chinese mode: two-byte GB18030 (GB2312/GBK subset) text.
``FS &`` selects Chinese mode and ``FS .`` cancels it.
"""

from __future__ import annotations

from dataclasses import dataclass

from provisioning.errors import LocalProtocolError

ESC = 0x1B
GS = 0x1D
FS = 0x1C
DLE = 0x10
LF = 0x0A

INIT = b"\x1b@"
CHINESE_ON = b"\x1c&"
CHINESE_OFF = b"\x1c."


def text(s: str, *, encoding: str = "gb18030") -> bytes:
    """Encode text for the printer; line feeds pass through."""
    try:
        return s.encode(encoding)
    except UnicodeEncodeError as exc:
        raise LocalProtocolError(f"text cannot be encoded in {encoding}: {exc}") from None


def line(s: str = "", *, encoding: str = "gb18030") -> bytes:
    return text(s, encoding=encoding) + b"\n"


def feed(lines: int) -> bytes:
    if not 0 <= lines <= 255:
        raise LocalProtocolError(f"feed lines must be 0-255, got {lines}")
    return bytes([ESC, ord("d"), lines])


def cut(*, partial: bool = False, feed_lines: int = 3) -> bytes:
    """``GS V m n``: feed ``feed_lines`` then cut (full with m=65, partial with m=66)."""
    return bytes([GS, ord("V"), 66 if partial else 65, feed_lines])


# -- device side -------------------------------------------------------------------------------


@dataclass(frozen=True)
class Init:
    pass


@dataclass(frozen=True)
class ChineseMode:
    on: bool


@dataclass(frozen=True)
class Text:
    data: bytes


@dataclass(frozen=True)
class Feed:
    lines: int


@dataclass(frozen=True)
class Cut:
    partial: bool


@dataclass(frozen=True)
class StatusRequest:
    n: int


@dataclass(frozen=True)
class Command:
    """A recognised command the parser does not model further (alignment, bold, ...)."""

    code: bytes


# Fixed-length commands: prefix -> total length including the prefix.
_FIXED = {
    b"\x1b@": 2,
    b"\x1c&": 2,
    b"\x1c.": 2,
    b"\x1bd": 3,
    b"\x1bJ": 3,
    b"\x1ba": 3,
    b"\x1bE": 3,
    b"\x1b!": 3,
    b"\x1b-": 3,
    b"\x1bt": 3,
    b"\x1bR": 3,
    b"\x1b2": 2,
    b"\x1b3": 3,
    b"\x1d!": 3,
    b"\x1dB": 3,
    b"\x1dh": 3,
    b"\x1dw": 3,
    b"\x1dH": 3,
    b"\x1da": 3,
    b"\x10\x04": 3,
    b"\x1c!": 3,
}


class EscPosParser:
    """Incremental parser of a host-to-printer stream: feed bytes, get events."""

    def __init__(self) -> None:
        self._buf = bytearray()

    def feed(self, data: bytes) -> list[object]:
        self._buf += data
        events: list[object] = []
        buf = self._buf
        i = 0
        text_start = None
        while i < len(buf):
            b = buf[i]
            if b in (ESC, GS, FS, DLE):
                if text_start is not None:
                    events.append(Text(bytes(buf[text_start:i])))
                    text_start = None
                consumed = self._command(buf, i, events)
                if consumed == 0:
                    break  # incomplete command: wait for more bytes
                i += consumed
            else:
                if text_start is None:
                    text_start = i
                i += 1
        if text_start is not None:
            events.append(Text(bytes(buf[text_start:i])))
        del buf[:i]
        return events

    def _command(self, buf: bytearray, i: int, events: list[object]) -> int:
        if i + 1 >= len(buf):
            return 0
        prefix = bytes(buf[i : i + 2])
        if prefix == b"\x1dV":
            if i + 2 >= len(buf):
                return 0
            m = buf[i + 2]
            if m in (0, 1, 48, 49):
                events.append(Cut(partial=m in (1, 49)))
                return 3
            if i + 3 >= len(buf):
                return 0
            events.append(Cut(partial=m in (66, 98)))
            return 4
        length = _FIXED.get(prefix)
        if length is None:
            # Unknown command byte: treat the prefix byte as data so a stream never wedges.
            events.append(Command(prefix[:1]))
            return 1
        if i + length > len(buf):
            return 0
        code = bytes(buf[i : i + length])
        if prefix == b"\x1b@":
            events.append(Init())
        elif prefix == b"\x1c&":
            events.append(ChineseMode(True))
        elif prefix == b"\x1c.":
            events.append(ChineseMode(False))
        elif prefix == b"\x1bd":
            events.append(Feed(code[2]))
        elif prefix == b"\x10\x04":
            events.append(StatusRequest(code[2]))
        else:
            events.append(Command(code))
        return length
