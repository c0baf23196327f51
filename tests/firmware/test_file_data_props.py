"""Properties of binary file_data frames against the real supervisor core (firmware 1.4.0).

A board in the middle of a file (file_open, one chunk written) gets a second chunk that is
damaged on the wire (a bit flipped, cut short, a wrong length field, a wrong CRC) or sound but
wrong (too long, empty, a wrong offset, any payload at all). Whatever it gets, it never raises:
a damaged frame is a counted link fault with no reply, a wrong chunk a clear refusal, and in
both cases the part file, the bytes counted and the hash are what they were; the next good chunk
and the commit then succeed.
"""

from __future__ import annotations

import hashlib
import json

from hypothesis import given, settings
from hypothesis import strategies as st

from firmware import link as L
from firmware.core.supervisor import Supervisor
from firmware.hal.host import HostHal
from tests.firmware.vectors_mp import cobs_decode

PATH = "firmware/p.mpy"
FIRST = bytes(range(1, 201))
SECOND = b"second chunk \x00 with a zero" * 4


def payload(off: int, chunk: bytes) -> bytes:
    return off.to_bytes(4, "big") + chunk


class Board:
    """The real Supervisor on the host HAL, spoken to frame by frame as the host driver does."""

    def __init__(self) -> None:
        self.hal = HostHal(lambda: 0)
        self.sup = Supervisor(self.hal, 0)
        self.host = L.FrameDecoder(L.MAX_ENCODED, L.V2)
        self.t = 0
        self.seq = 0

    def raw(self, wire: bytes) -> list[L.Frame]:
        """Feed ``wire``; the board's replies to host commands (its events are acknowledged)."""
        self.sup.receive(wire, self.t)
        replies = []
        for _ in range(3):
            self.t += 5
            for f in self.host.feed(self.sup.tick(self.t)):
                if f.mtype == L.EVENT:
                    self.sup.receive(L.encode_frame(0, f.seq, L.ACK), self.t)
                elif f.mtype & L.REPLY:
                    replies.append(f)
        return replies

    def send(self, mtype: int, body: dict | bytes) -> L.Frame:
        self.seq += 1
        replies = self.raw(L.encode_frame(self.seq, 0, mtype, L.encode_body(body), L.FLAG_SYN if self.seq == 1 else 0))
        assert len(replies) == 1 and replies[0].ack == self.seq, replies
        return replies[0]

    def state(self) -> tuple:
        up = self.sup.upload
        return dict(self.hal.files.files), None if up is None else (up.part, up.off)

    def faults(self) -> int:
        return self.sup.link.decoder.error_count()


def board_with_a_file_open() -> Board:
    b = Board()
    assert b.send(L.FILE_OPEN, {"path": PATH}).body() == {"chunk": L.FILE_CHUNK}
    assert bytes(b.send(L.FILE_DATA, payload(0, FIRST)).payload) == len(FIRST).to_bytes(4, "big")
    return b


def finishes(b: Board) -> None:
    """The good second chunk and the commit still work: nothing of the bad frame was kept."""
    assert bytes(b.send(L.FILE_DATA, payload(len(FIRST), SECOND)).payload) == (len(FIRST) + len(SECOND)).to_bytes(4, "big")
    want = hashlib.sha256(FIRST + SECOND).hexdigest()
    assert b.send(L.FILE_COMMIT, {"path": PATH, "sha256": want}).body()["sha256"] == want
    assert b.hal.files.files[PATH] == FIRST + SECOND and b.sup.upload is None


def damaged(kind: str, at: int, bit: int, cut: int, delta: int, seq: int) -> bytes:
    """The second chunk's frame damaged on the wire in one way; COBS-framed again, so that the
    damage reaches the length and CRC checks rather than only the COBS decoder."""
    good = L.encode_frame(seq, 0, L.FILE_DATA, payload(len(FIRST), SECOND))
    raw = bytearray(cobs_decode(good[1:-1]))
    if kind == "flip":
        raw[at % len(raw)] ^= 1 << bit
    elif kind == "cut":
        del raw[len(raw) - 1 - cut % (len(raw) - 1):]
    elif kind == "length":
        n = (raw[4] << 8 | raw[5]) + delta
        raw[4], raw[5] = (n >> 8) & 0xFF, n & 0xFF
    else:  # crc
        raw[-1] ^= delta & 0xFF or 1
    return L.cobs_encode(bytes(raw), 1)


@given(st.sampled_from(["flip", "cut", "length", "crc"]), st.integers(0, 400), st.integers(0, 7),
       st.integers(0, 300), st.integers(1, 255))
@settings(max_examples=100, deadline=None)
def test_a_damaged_frame_is_a_counted_fault_and_changes_nothing(kind, at, bit, cut, delta) -> None:
    b = board_with_a_file_open()
    before, faults = b.state(), b.faults()
    replies = b.raw(damaged(kind, at, bit, cut, delta, b.seq + 1))
    assert replies == [] and b.faults() == faults + 1, (kind, b.sup.link.decoder.errors)
    assert b.state() == before
    finishes(b)


@given(st.integers(L.FILE_CHUNK + 1, L.MAX_PAYLOAD - 4))
@settings(max_examples=20, deadline=None)
def test_an_oversized_chunk_is_refused_and_changes_nothing(n: int) -> None:
    b = board_with_a_file_open()
    before = b.state()
    assert b.send(L.FILE_DATA, payload(len(FIRST), bytes(n))).body() == {"err": "chunk"}
    assert b.state() == before
    finishes(b)


@given(st.binary(max_size=L.MAX_PAYLOAD))
@settings(max_examples=80, deadline=None)
def test_any_payload_gives_the_bytes_held_or_a_clear_refusal(data: bytes) -> None:
    b = board_with_a_file_open()
    before = b.state()
    reply = bytes(b.send(L.FILE_DATA, data).payload)
    off = int.from_bytes(data[:4], "big") if len(data) >= 4 else -1
    if len(data) >= 5 and len(data) - 4 <= L.FILE_CHUNK and off == len(FIRST):
        assert reply == (len(FIRST) + len(data) - 4).to_bytes(4, "big")
        assert b.hal.files.files[PATH + ".part"] == FIRST + data[4:]
        return
    assert json.loads(reply) == {"err": "chunk" if not 5 <= len(data) <= 4 + L.FILE_CHUNK else "offset"}
    assert b.state() == before
    finishes(b)


def test_an_oversized_frame_is_an_overflow_fault() -> None:
    b = board_with_a_file_open()
    before, faults = b.state(), b.faults()
    big = L.cobs_encode(bytes([0x20, b.seq + 1, 0, L.FILE_DATA, 0x02, 0x00]) + bytes(range(1, 256)) * 2 + b"\x12\x34", 1)
    assert b.raw(big) == [] and b.sup.link.decoder.errors.get("overflow") == 1 and b.faults() == faults + 1
    assert b.state() == before
    finishes(b)


def test_a_chunk_without_a_file_open_is_refused() -> None:
    b = Board()
    assert b.send(L.FILE_DATA, payload(0, b"stray")).body() == {"err": "no_upload"}
    assert b.hal.files.files == {} and b.sup.upload is None
