"""Barcode/QR scanner line protocol, sans-IO.

A scanner in serial mode sends each code as one line: optional AIM symbology identifier
(``]`` + code character + modifier, e.g. ``]Q1`` for QR), the data, then the configured suffix
(CR or CRLF). Lines are length-bounded; the data is decoded as UTF-8, then GB18030 (older
Chinese scanners send GBK); a repeat of the same code inside the de-bounce window is dropped.
"""

from __future__ import annotations

from dataclasses import dataclass

from foundation.errors import LocalProtocolError

SUFFIXES = {"CR": b"\r", "CRLF": b"\r\n", "LF": b"\n"}
# AIM code characters (ISO/IEC 15424) for the symbologies a kiosk meets.
AIM = {"Q": "QR", "C": "Code128", "E": "EAN/UPC", "d": "DataMatrix", "A": "Code39", "I": "ITF",
       "L": "PDF417", "z": "Aztec", "X": "other"}


@dataclass(frozen=True)
class Scan:
    data: str
    symbology: str | None
    raw: bytes


@dataclass(frozen=True)
class ScanError:
    reason: str
    length: int


def encode_scan(data: str | bytes, *, suffix: str = "CR", aim: str | None = None, encoding: str = "utf-8") -> bytes:
    """What a scanner sends for one code (device side: used by the simulator)."""
    if suffix not in SUFFIXES:
        raise LocalProtocolError(f"suffix must be one of {', '.join(SUFFIXES)}")
    raw = data if isinstance(data, bytes) else data.encode(encoding)
    prefix = f"]{aim}".encode() if aim else b""
    return prefix + raw + SUFFIXES[suffix]


class ScannerDecoder:
    def __init__(self, *, suffix: str = "CR", aim_prefix: bool = True, max_length: int = 2048) -> None:
        if suffix not in SUFFIXES:
            raise LocalProtocolError(f"suffix must be one of {', '.join(SUFFIXES)}")
        self.terminator = SUFFIXES[suffix][-1:]
        self.suffix = SUFFIXES[suffix]
        self.aim_prefix = aim_prefix
        self.max_length = max_length
        self._buf = bytearray()
        self._overflow = 0

    def feed(self, data: bytes) -> list[Scan | ScanError]:
        events: list[Scan | ScanError] = []
        self._buf += data
        while True:
            i = self._buf.find(self.terminator)
            if i < 0:
                if len(self._buf) > self.max_length + len(self.suffix):
                    self._overflow += len(self._buf)
                    self._buf.clear()
                return events
            line = bytes(self._buf[:i])
            del self._buf[: i + 1]
            if self._overflow:
                events.append(ScanError("too long", self._overflow + len(line)))
                self._overflow = 0
                continue
            if self.suffix == b"\r\n":
                line = line.removesuffix(b"\r")
            else:
                line = line.lstrip(b"\n")  # a stray LF after CR from a scanner set to CRLF
            if not line:
                continue
            events.append(self._decode(line))

    def _decode(self, line: bytes) -> Scan | ScanError:
        if len(line) > self.max_length:
            return ScanError("too long", len(line))
        symbology = None
        body = line
        if self.aim_prefix and len(line) >= 3 and line[:1] == b"]":
            symbology = AIM.get(chr(line[1]), "other")
            body = line[3:]
        for enc in ("utf-8", "gb18030"):
            try:
                return Scan(body.decode(enc), symbology, line)
            except UnicodeDecodeError:
                continue
        return ScanError("undecodable", len(line))


class Debouncer:
    """Drops the same code seen again within ``window`` seconds (a code held under the scanner)."""

    def __init__(self, window: float) -> None:
        self.window = window
        self._last: tuple[str, float] | None = None

    def accept(self, data: str, now: float) -> bool:
        if self._last and self._last[0] == data and now - self._last[1] < self.window:
            self._last = (data, now)
            return False
        self._last = (data, now)
        return True
