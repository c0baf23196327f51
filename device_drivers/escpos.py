"""ESC/POS receipt-printer protocol, sans-IO.

Host side: command builders (text, alignment, bold, size, Code128, QR ``GS ( k``, raster
``GS v 0``, cut, ``DLE EOT n`` status requests, ``GS a`` automatic status back) and
:class:`StatusReader`, which classifies the printer's bytes (DLE EOT replies, 4-byte ASB blocks,
XON/XOFF). Device side: :class:`EscPosParser`, an incremental parser of the host's stream used by
the simulator and byte-exact tests.

Chinese-market printers power up in Chinese mode: GB18030 text (two-byte GB2312/GBK, and on
some models four-byte GB18030). ``FS &`` selects Chinese mode and ``FS .`` cancels it.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from foundation.errors import LocalProtocolError

ESC = 0x1B
GS = 0x1D
FS = 0x1C
DLE = 0x10
LF = 0x0A
XON = 0x11
XOFF = 0x13

INIT = b"\x1b@"
CHINESE_ON = b"\x1c&"
CHINESE_OFF = b"\x1c."
#: Shown instead of a character the printer cannot print (GB2312 A1FE, the customary "geta").
REPLACEMENT = "〓"


def text(s: str, *, encoding: str = "gb18030") -> bytes:
    """Encode text for the printer; line feeds pass through."""
    try:
        return s.encode(encoding)
    except UnicodeEncodeError as exc:
        raise LocalProtocolError(f"text cannot be encoded in {encoding}: {exc}") from None


def line(s: str = "", *, encoding: str = "gb18030") -> bytes:
    return text(s, encoding=encoding) + b"\n"


def encode_chinese(s: str, charset: str) -> tuple[bytes, list[str]]:
    """Encode ``s`` as GB18030 bytes the printer's font covers.

    ``charset`` is the profile's coverage: ``gb2312``, ``gbk`` (two-byte only) or ``gb18030``
    (four-byte sequences too). Characters outside it become :data:`REPLACEMENT`; the returned
    warnings name their code points (never the text around them: it may be a resident's name).
    """
    if charset not in ("gb2312", "gbk", "gb18030"):
        raise LocalProtocolError(f"unknown printer charset {charset!r}")
    try:
        return s.encode(charset), []
    except UnicodeEncodeError:
        pass
    out = bytearray()
    warnings: list[str] = []
    for ch in s:
        try:
            out += ch.encode(charset)
        except UnicodeEncodeError:
            out += REPLACEMENT.encode("gb2312")
            warnings.append(f"U+{ord(ch):04X} not in printer charset {charset}; printed as {REPLACEMENT}")
    return bytes(out), warnings


def feed(lines: int) -> bytes:
    if not 0 <= lines <= 255:
        raise LocalProtocolError(f"feed lines must be 0-255, got {lines}")
    return bytes([ESC, ord("d"), lines])


def cut(*, partial: bool = False, feed_lines: int = 3) -> bytes:
    """``GS V m n``: feed ``feed_lines`` then cut (full with m=65, partial with m=66)."""
    if not 0 <= feed_lines <= 255:
        raise LocalProtocolError(f"cut feed must be 0-255, got {feed_lines}")
    return bytes([GS, ord("V"), 66 if partial else 65, feed_lines])


ALIGN = {"left": 0, "center": 1, "right": 2}


def align(where: str) -> bytes:
    if where not in ALIGN:
        raise LocalProtocolError(f"alignment must be one of {', '.join(ALIGN)}, got {where!r}")
    return bytes([ESC, ord("a"), ALIGN[where]])


def bold(on: bool) -> bytes:
    return bytes([ESC, ord("E"), 1 if on else 0])


def size(width: int = 1, height: int = 1) -> bytes:
    """``GS ! n``: character magnification 1-8 in each direction."""
    if not (1 <= width <= 8 and 1 <= height <= 8):
        raise LocalProtocolError(f"character size must be 1-8, got {width}x{height}")
    return bytes([GS, ord("!"), ((width - 1) << 4) | (height - 1)])


def status_request(n: int) -> bytes:
    """``DLE EOT n``: real-time status (1 printer, 2 offline cause, 3 error cause, 4 paper)."""
    if n not in (1, 2, 3, 4):
        raise LocalProtocolError(f"DLE EOT n must be 1-4, got {n}")
    return bytes([DLE, 0x04, n])


def asb_enable(*, drawer=False, online=True, error=True, paper=True) -> bytes:
    """``GS a n``: enable automatic status back for the chosen status groups."""
    n = (1 if drawer else 0) | (2 if online else 0) | (4 if error else 0) | (8 if paper else 0)
    return bytes([GS, ord("a"), n])


def barcode_code128(data: str, *, height: int = 80, module: int = 2, hri_below: bool = True) -> bytes:
    """``GS k 73 n d1..dn`` (Code128, code set B selected with ``{B``), with height, width, HRI."""
    try:
        payload = b"{B" + data.encode("ascii")
    except UnicodeEncodeError:
        raise LocalProtocolError("Code128 data must be ASCII") from None
    if not data or len(payload) > 255 or any(b < 0x20 or b > 0x7E for b in payload):
        raise LocalProtocolError("Code128 data must be 1-253 printable ASCII characters")
    if not (1 <= height <= 255 and 2 <= module <= 6):
        raise LocalProtocolError("barcode height 1-255 and module 2-6")
    return (bytes([GS, ord("h"), height, GS, ord("w"), module, GS, ord("H"), 2 if hri_below else 0])
            + bytes([GS, ord("k"), 73, len(payload)]) + payload)


QR_ECC = {"L": 48, "M": 49, "Q": 50, "H": 51}


def _gs_k(fn: int, params: bytes) -> bytes:
    body = bytes([49, fn]) + params  # cn = 49: QR code
    return bytes([GS, ord("("), ord("k"), len(body) & 0xFF, len(body) >> 8]) + body


def qr(data: str, *, module: int = 6, ecc: str = "M") -> bytes:
    """QR code through ``GS ( k``: model 2 (fn 65), module size (fn 67), error correction
    (fn 69), store the data (fn 80), print it (fn 81)."""
    if ecc not in QR_ECC:
        raise LocalProtocolError(f"QR error correction must be L, M, Q or H, got {ecc!r}")
    if not 1 <= module <= 16:
        raise LocalProtocolError(f"QR module size must be 1-16, got {module}")
    payload = data.encode("utf-8")
    if not payload or len(payload) > 7089:
        raise LocalProtocolError("QR data must be 1-7089 bytes")
    return (_gs_k(65, bytes([50, 0])) + _gs_k(67, bytes([module])) + _gs_k(69, bytes([QR_ECC[ecc]]))
            + _gs_k(80, b"0" + payload) + _gs_k(81, b"0"))


def raster(width_bytes: int, rows: bytes, *, height: int | None = None) -> bytes:
    """``GS v 0 m xL xH yL yH d...``: one band of a 1-bit raster image (1 = black)."""
    if width_bytes <= 0 or width_bytes > 0xFFFF:
        raise LocalProtocolError("raster width must be 1-65535 bytes")
    h = height if height is not None else len(rows) // width_bytes
    if h <= 0 or h > 0xFFFF or h * width_bytes != len(rows):
        raise LocalProtocolError("raster data length must be width_bytes x height")
    return bytes([GS, ord("v"), ord("0"), 0, width_bytes & 0xFF, width_bytes >> 8, h & 0xFF, h >> 8]) + rows


def raster_bands(width_bytes: int, rows: bytes, band_rows: int) -> list[bytes]:
    """Split an image into ``GS v 0`` bands of ``band_rows`` rows, so they can be paced."""
    step = width_bytes * band_rows
    return [raster(width_bytes, rows[i : i + step]) for i in range(0, len(rows), step)]


# -- printer -> host: status bytes -----------------------------------------------------------------


@dataclass(frozen=True)
class StatusByte:
    """A ``DLE EOT n`` reply (pattern 0xx1xx10)."""

    value: int


@dataclass(frozen=True)
class AsbStatus:
    """A 4-byte automatic status back block (``GS a``)."""

    data: bytes

    @property
    def offline(self) -> bool:
        return bool(self.data[0] & 0x08)

    @property
    def cover_open(self) -> bool:
        return bool(self.data[0] & 0x20)

    @property
    def cutter_error(self) -> bool:
        return bool(self.data[1] & 0x08)

    @property
    def unrecoverable_error(self) -> bool:
        return bool(self.data[1] & 0x20)

    @property
    def paper_near_end(self) -> bool:
        return bool(self.data[2] & 0x03)

    @property
    def paper_end(self) -> bool:
        return bool(self.data[2] & 0x0C)


@dataclass(frozen=True)
class FlowControl:
    xon: bool


@dataclass(frozen=True)
class Garbage:
    """Bytes that fit no pattern (line noise, a garbled status); the reader resynchronises."""

    data: bytes


def asb_block(*, offline=False, cover_open=False, cutter_error=False, unrecoverable=False,
              near_end=False, paper_end=False) -> bytes:
    """Build an ASB block (device side, used by the simulator and fixtures)."""
    b1 = 0x10 | (0x08 if offline else 0) | (0x20 if cover_open else 0)
    b2 = (0x08 if cutter_error else 0) | (0x20 if unrecoverable else 0)
    b3 = (0x03 if near_end else 0) | (0x0C if paper_end else 0)
    return bytes([b1, b2, b3, 0x00])


class StatusReader:
    """Classifies what a printer sends: DLE EOT replies, ASB blocks, XON/XOFF, garbage."""

    def __init__(self) -> None:
        self._asb = bytearray()

    def feed(self, data: bytes) -> list[object]:
        events: list[object] = []
        for b in data:
            if self._asb:
                if b & 0x90 == 0:
                    self._asb.append(b)
                    if len(self._asb) == 4:
                        events.append(AsbStatus(bytes(self._asb)))
                        self._asb.clear()
                    continue
                events.append(Garbage(bytes(self._asb)))  # broken block: drop it, look at b afresh
                self._asb.clear()
            if b == XON or b == XOFF:
                events.append(FlowControl(b == XON))
            elif b & 0x93 == 0x12:
                events.append(StatusByte(b))
            elif b & 0x93 == 0x10:
                self._asb.append(b)
            else:
                events.append(Garbage(bytes([b])))
        return events


def decode_status(n: int, value: int) -> dict[str, bool]:
    """Meaning of a ``DLE EOT n`` reply byte (Epson ESC/POS reference bit layout)."""
    if n == 1:
        return {"offline": bool(value & 0x08), "waiting_recovery": bool(value & 0x20)}
    if n == 2:
        return {"cover_open": bool(value & 0x04), "feed_button": bool(value & 0x08),
                "paper_end_stop": bool(value & 0x20), "error": bool(value & 0x40)}
    if n == 3:
        return {"cutter_error": bool(value & 0x08), "unrecoverable_error": bool(value & 0x20),
                "auto_recoverable_error": bool(value & 0x40)}
    if n == 4:
        return {"paper_near_end": bool(value & 0x0C), "paper_end": bool(value & 0x60)}
    raise LocalProtocolError(f"DLE EOT n must be 1-4, got {n}")


# -- host -> printer: device-side parser ---------------------------------------------------------


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
class Align:
    where: str


@dataclass(frozen=True)
class Bold:
    on: bool


@dataclass(frozen=True)
class Size:
    width: int
    height: int


@dataclass(frozen=True)
class AsbEnable:
    mask: int


@dataclass(frozen=True)
class Barcode:
    system: int
    data: bytes


@dataclass(frozen=True)
class QrStore:
    data: bytes


@dataclass(frozen=True)
class QrPrint:
    pass


@dataclass(frozen=True)
class Raster:
    width_bytes: int
    height: int
    data: bytes


@dataclass(frozen=True)
class Command:
    """A recognised command the parser does not model further (line spacing, code page, ...)."""

    code: bytes


# Fixed-length commands: prefix -> total length including the prefix.
_FIXED = {
    b"\x1b@": 2, b"\x1c&": 2, b"\x1c.": 2, b"\x1b2": 2, b"\x1b<": 2,
    b"\x1bd": 3, b"\x1bJ": 3, b"\x1ba": 3, b"\x1bE": 3, b"\x1b!": 3, b"\x1b-": 3, b"\x1bt": 3,
    b"\x1bR": 3, b"\x1b3": 3, b"\x1bM": 3, b"\x1bG": 3, b"\x1b{": 3, b"\x1bV": 3, b"\x1b ": 3,
    b"\x1bc": 4, b"\x1b$": 4, b"\x1b\\": 4, b"\x1bp": 5, b"\x1be": 3, b"\x1bU": 3,
    b"\x1d!": 3, b"\x1dB": 3, b"\x1dh": 3, b"\x1dw": 3, b"\x1dH": 3, b"\x1da": 3, b"\x1df": 3,
    b"\x1db": 3, b"\x1dL": 4, b"\x1dW": 4, b"\x1dP": 4, b"\x1dI": 3, b"\x1dr": 3,
    b"\x10\x04": 3, b"\x10\x05": 3, b"\x1c!": 3, b"\x1c-": 3, b"\x1cW": 3, b"\x1cS": 4,
}
_CTRL = re.compile(rb"[\x10\x1b\x1c\x1d]")
_MAX_PENDING = 1 << 20  # a command announcing more than this is treated as line noise


class EscPosParser:
    """Incremental parser of a host-to-printer stream: feed bytes, get events. Never raises on
    any input: unknown or impossible commands become :class:`Command` events and parsing goes on."""

    def __init__(self) -> None:
        self._buf = bytearray()

    def feed(self, data: bytes) -> list[object]:
        self._buf += data
        events: list[object] = []
        buf = self._buf
        i = 0
        n = len(buf)
        while i < n:
            m = _CTRL.search(buf, i)
            j = m.start() if m else n
            if j > i:
                events.append(Text(bytes(buf[i:j])))
                i = j
                continue
            consumed = self._command(buf, i, events)
            if consumed == 0:
                break  # incomplete command: wait for more bytes
            i += consumed
        del buf[:i]
        return events

    def _command(self, buf: bytearray, i: int, events: list[object]) -> int:
        avail = len(buf) - i
        if avail < 2:
            return 0
        prefix = bytes(buf[i : i + 2])
        if prefix == b"\x1dV":
            if avail < 3:
                return 0
            m = buf[i + 2]
            if m in (0, 1, 48, 49):
                events.append(Cut(partial=m in (1, 49)))
                return 3
            if avail < 4:
                return 0
            events.append(Cut(partial=m in (66, 98)))
            return 4
        if prefix == b"\x1d(":
            if avail < 5:
                return 0
            length = buf[i + 3] | (buf[i + 4] << 8)
            if avail < 5 + length:
                return 0
            body = bytes(buf[i + 5 : i + 5 + length])
            if buf[i + 2] == ord("k") and len(body) >= 2 and body[0] == 49:
                if body[1] == 80 and len(body) >= 3:
                    events.append(QrStore(body[3:]))
                elif body[1] == 81:
                    events.append(QrPrint())
                else:
                    events.append(Command(bytes(buf[i : i + 5 + length])))
            else:
                events.append(Command(bytes(buf[i : i + 5 + length])))
            return 5 + length
        if prefix == b"\x1dv":
            if avail < 8:
                return 0
            if buf[i + 2] not in (0x30, 0x00):
                events.append(Command(prefix))
                return 2
            wb = buf[i + 4] | (buf[i + 5] << 8)
            h = buf[i + 6] | (buf[i + 7] << 8)
            size_ = wb * h
            if size_ > _MAX_PENDING:
                events.append(Command(prefix))
                return 2
            if avail < 8 + size_:
                return 0
            events.append(Raster(wb, h, bytes(buf[i + 8 : i + 8 + size_])))
            return 8 + size_
        if prefix == b"\x1dk":
            if avail < 3:
                return 0
            m = buf[i + 2]
            if m <= 6:
                end = buf.find(b"\x00", i + 3)
                if end < 0:
                    if avail > 300:  # no terminator in sight: noise, not a barcode
                        events.append(Command(prefix))
                        return 2
                    return 0
                events.append(Barcode(m, bytes(buf[i + 3 : end])))
                return end + 1 - i
            if avail < 4:
                return 0
            k = buf[i + 3]
            if avail < 4 + k:
                return 0
            payload = bytes(buf[i + 4 : i + 4 + k])
            if m == 73 and payload[:1] == b"{" and len(payload) >= 2:
                payload = payload[2:]
            events.append(Barcode(m, payload))
            return 4 + k
        if prefix == b"\x1b*":
            if avail < 5:
                return 0
            width = buf[i + 3] | (buf[i + 4] << 8)
            size_ = width * (3 if buf[i + 2] in (32, 33) else 1)
            if avail < 5 + size_:
                return 0
            events.append(Command(bytes(buf[i : i + 5 + size_])))
            return 5 + size_
        length = _FIXED.get(prefix)
        if length is None:
            # Unknown command: drop the prefix byte so a stream never wedges.
            events.append(Command(prefix[:1]))
            return 1
        if avail < length:
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
        elif prefix == b"\x1ba":
            events.append(Align({0: "left", 1: "center", 2: "right", 48: "left", 49: "center",
                                 50: "right"}.get(code[2], "left")))
        elif prefix == b"\x1bE":
            events.append(Bold(bool(code[2] & 1)))
        elif prefix == b"\x1d!":
            events.append(Size((code[2] >> 4 & 7) + 1, (code[2] & 7) + 1))
        elif prefix == b"\x1b!":
            events.append(Bold(bool(code[2] & 0x08)))
            events.append(Size(2 if code[2] & 0x20 else 1, 2 if code[2] & 0x10 else 1))
        elif prefix == b"\x1da":
            events.append(AsbEnable(code[2]))
        else:
            events.append(Command(code))
        return length
