"""NXP PN532 host interface frames (HSU/UART), sans-IO. Layout from the PN532 User Manual:

* normal information frame: ``00 00 FF LEN LCS TFI PD0..PDn DCS 00`` with LEN = bytes of TFI+PD,
  LEN + LCS = 0 (mod 256), TFI + sum(PD) + DCS = 0 (mod 256);
* extended frame (more than 254 data bytes): ``00 00 FF FF FF LENM LENL LCS TFI PD.. DCS 00``,
  LENM + LENL + LCS = 0;
* ACK ``00 00 FF 00 FF 00``, NACK ``00 00 FF FF 00 00``, error frame
  ``00 00 FF 01 FF 7F 81 00`` (the PN532 saw a syntax error);
* TFI ``D4`` host -> PN532, ``D5`` PN532 -> host; the response code is the command code + 1.

On HSU the PN532 sleeps until it sees a long preamble (``55 55 00 00 00 ...``) followed by a
command, usually SAMConfiguration.
"""

from __future__ import annotations

from dataclasses import dataclass

from foundation.errors import LocalProtocolError, RemoteProtocolError

HOST_TO_PN532 = 0xD4
PN532_TO_HOST = 0xD5
ACK = b"\x00\x00\xff\x00\xff\x00"
NACK = b"\x00\x00\xff\xff\x00\x00"
ERROR_FRAME = b"\x00\x00\xff\x01\xff\x7f\x81\x00"
WAKEUP = b"\x55\x55" + b"\x00" * 14
START = b"\x00\xff"

GET_FIRMWARE_VERSION = 0x02
SAM_CONFIGURATION = 0x14
RF_CONFIGURATION = 0x32
IN_DATA_EXCHANGE = 0x40
IN_LIST_PASSIVE_TARGET = 0x4A
IN_RELEASE = 0x52

MAX_DATA = 264  # the PN532's largest information frame payload

# InDataExchange / general status byte (low 6 bits), PN532 User Manual section 7.1.
STATUS_TEXT = {
    0x00: "success",
    0x01: "timeout: the target did not answer",
    0x02: "CRC error from the target",
    0x03: "parity error from the target",
    0x0A: "RF field not switched on in time",
    0x13: "frame format error from the target",
    0x14: "authentication error",
    0x25: "target not in the right state",
    0x27: "command not acceptable in this context",
    0x29: "target released by the initiator",
    0x2B: "card removed or not there",
}


def encode_frame(data: bytes, tfi: int = HOST_TO_PN532) -> bytes:
    """TFI + data in a normal or, when longer than 254 bytes, an extended information frame."""
    body = bytes([tfi]) + data
    if len(body) > MAX_DATA + 1:
        raise LocalProtocolError(f"PN532 frame data too long ({len(data)} bytes)")
    dcs = (-sum(body)) & 0xFF
    n = len(body)
    if n <= 255:
        head = b"\x00\x00\xff" + bytes([n, (-n) & 0xFF])
    else:
        hi, lo = n >> 8, n & 0xFF
        head = b"\x00\x00\xff\xff\xff" + bytes([hi, lo, (-(hi + lo)) & 0xFF])
    return head + body + bytes([dcs, 0x00])


def command(code: int, params: bytes = b"") -> bytes:
    return encode_frame(bytes([code]) + params, HOST_TO_PN532)


def response(code: int, data: bytes = b"") -> bytes:
    """The PN532's answer to ``code`` (device side: used by the simulator)."""
    return encode_frame(bytes([code + 1]) + data, PN532_TO_HOST)


@dataclass(frozen=True)
class Ack:
    pass


@dataclass(frozen=True)
class Nack:
    pass


@dataclass(frozen=True)
class ErrorFrame:
    """The PN532 reported a syntax error in what it received."""


@dataclass(frozen=True)
class Frame:
    tfi: int
    code: int
    data: bytes


@dataclass(frozen=True)
class FrameError:
    reason: str


class Pn532Decoder:
    """Incremental decoder of both directions. Never raises on input: damaged frames become
    :class:`FrameError` and decoding resumes at the next start code."""

    def __init__(self) -> None:
        self._buf = bytearray()

    def feed(self, data: bytes) -> list[object]:
        buf = self._buf
        buf += data
        events: list[object] = []
        while True:
            i = buf.find(START)
            if i < 0:
                keep = 1 if buf.endswith(b"\x00") else 0
                del buf[: len(buf) - keep]
                return events
            del buf[:i]
            if len(buf) < 4:
                return events
            a, b = buf[2], buf[3]
            if (a, b) == (0x00, 0xFF):
                events.append(Ack())
                del buf[:4]
                continue
            if (a, b) == (0xFF, 0x00):
                events.append(Nack())
                del buf[:4]
                continue
            if (a, b) == (0xFF, 0xFF):
                if len(buf) < 7:
                    return events
                n = (buf[4] << 8) | buf[5]
                if (buf[4] + buf[5] + buf[6]) & 0xFF or n < 2 or n > MAX_DATA + 1:
                    events.append(FrameError("bad extended length checksum"))
                    del buf[:2]
                    continue
                start = 7
            else:
                n = a
                if (a + b) & 0xFF or n == 0:
                    events.append(FrameError("bad length checksum"))
                    del buf[:2]
                    continue
                start = 4
            if len(buf) < start + n + 1:
                return events
            body = bytes(buf[start : start + n])
            dcs = buf[start + n]
            if (sum(body) + dcs) & 0xFF:
                events.append(FrameError("bad data checksum"))
                del buf[:2]
                continue
            del buf[: start + n + 1]
            if body == b"\x7f":
                events.append(ErrorFrame())
            elif len(body) < 2 or body[0] not in (HOST_TO_PN532, PN532_TO_HOST):
                events.append(FrameError("unknown frame identifier"))
            else:
                events.append(Frame(body[0], body[1], body[2:]))


@dataclass(frozen=True)
class Target:
    """A card found by InListPassiveTarget at 106 kbps type A."""

    tg: int
    sens_res: bytes
    sel_res: int
    uid: bytes
    ats: bytes

    @property
    def iso_dep(self) -> bool:
        """The card speaks ISO 14443-4 (APDUs), e.g. a social-security card."""
        return bool(self.sel_res & 0x20)


def parse_targets(data: bytes) -> list[Target]:
    """Data of an InListPassiveTarget (106 kbps type A) response -> targets.
    Raises RemoteProtocolError when the announced lengths do not fit."""
    if not data:
        raise RemoteProtocolError("empty InListPassiveTarget response")
    count, i, out = data[0], 1, []
    for _ in range(count):
        if i + 5 > len(data):
            raise RemoteProtocolError("InListPassiveTarget response truncated")
        tg, sens, sel, ulen = data[i], data[i + 1 : i + 3], data[i + 3], data[i + 4]
        i += 5
        uid = data[i : i + ulen]
        if len(uid) != ulen:
            raise RemoteProtocolError("InListPassiveTarget UID truncated")
        i += ulen
        ats = b""
        if sel & 0x20:
            if i >= len(data) or data[i] == 0 or i + data[i] > len(data):
                raise RemoteProtocolError("InListPassiveTarget ATS truncated")
            ats = data[i : i + data[i]]
            i += data[i]
        out.append(Target(tg, bytes(sens), sel, bytes(uid), bytes(ats)))
    return out


def encode_target(tg: int, sens_res: bytes, sel_res: int, uid: bytes, ats: bytes = b"") -> bytes:
    """One target entry of an InListPassiveTarget response (device side)."""
    out = bytes([tg]) + sens_res + bytes([sel_res, len(uid)]) + uid
    if sel_res & 0x20:
        out += ats
    return out
