"""Property tests for the link codec: any bytes give frames or counted faults, nothing else."""

from __future__ import annotations

import base64

from hypothesis import given, settings
from hypothesis import strategies as st

from firmware import link as L
from tests.firmware.vectors_mp import cobs_decode

frames_st = st.builds(
    lambda seq, ack, mtype, payload, flags: (seq, ack, mtype, payload, flags),
    st.integers(0, 255), st.integers(0, 255), st.integers(0, 255),
    st.binary(max_size=L.MAX_PAYLOAD), st.integers(0, 15),
)


@given(st.binary(max_size=600))
def test_cobs_roundtrip(data: bytes) -> None:
    enc = L.cobs_encode(data)
    assert 0 not in enc
    assert cobs_decode(enc) == data


VERSION_SETS = st.sampled_from([L.V2, L.V1 | L.V2, L.V1])


@given(st.binary(max_size=2000), st.lists(st.integers(1, 64), max_size=20), VERSION_SETS)
@settings(max_examples=300)
def test_decoder_never_raises(data: bytes, cuts: list[int], versions: int) -> None:
    dec = L.FrameDecoder(L.MAX_ENCODED, versions)
    pos = 0
    for n in cuts + [len(data)]:
        for frame in dec.feed(data[pos:pos + n]):
            assert isinstance(frame, L.Frame)
            assert (versions >> frame.version) & 1
            try:
                frame.body()
            except L.LinkError as exc:
                assert exc.reason == "payload"
        pos += n


@given(frames_st, st.binary(max_size=300), st.integers(0, 40), st.sampled_from([L.PROTO_V1, L.PROTO_VERSION]))
def test_frame_survives_garbage_and_cut(frame, junk: bytes, cut: int, version: int) -> None:
    seq, ack, mtype, payload, flags = frame
    wire = L.encode_frame(seq, ack, mtype, payload, flags, version)
    dec = L.FrameDecoder(L.MAX_ENCODED, L.V1 | L.V2)
    got = dec.feed(junk + wire[:cut]) + dec.feed(wire[cut:])
    ours = [f for f in got if (f.seq, f.ack, f.mtype, f.payload, f.flags, f.version) == frame + (version,)]
    assert len(ours) == 1


def code_positions(wire: bytes) -> set[int]:
    """Indexes of the COBS code bytes in one delimited frame (0x00, encoded bytes, 0x00)."""
    out = set()
    i = 1
    while i < len(wire) - 1:
        out.add(i)
        i += wire[i]
    return out


def single_flips(wire: bytes) -> list[tuple[int, int]]:
    """The (index, bit) flips whose outcome the protocol guarantees, CRC luck aside.

    Every flip in a data byte; in a code byte only the one that zeroes it. A flip that leaves a
    code byte non-zero moves 0x00 bytes around inside the decoded frame, usually keeping its
    length, so often only the CRC is left to see it, and a CRC-16 misses about one such
    multi-byte error in 65,536 (docs/firmware.md, "Integrity"). Those are covered below for the
    frames the kiosk really sends (test_every_bit_flip_of_real_frames_is_caught).
    """
    codes = code_positions(wire)
    return [(i, b) for i in range(1, len(wire) - 1) for b in range(8)
            if i not in codes or wire[i] == 1 << b]


@given(frames_st, st.integers(0, 1 << 20))
@settings(max_examples=1000)
def test_single_bit_flip_is_detected(frame, pick: int) -> None:
    """A flipped data bit is always caught: a one-bit error is ``length`` or ``crc`` for sure.

    A flip that makes a 0x00 cuts the frame in two: the front part is a true prefix of the frame
    and so is always caught by its length (``length``, ``short``, or ``cobs`` when the cut falls
    inside a COBS block) however its last two bytes look; the part after the cut is stray bytes
    like any line noise, left to the decoder's other checks. One exception delivers a frame, and
    it is the right one: zeroing the final 0x01 code after a 0xFF block leaves the whole frame
    (COBS may end a frame either way).
    """
    seq, ack, mtype, payload, flags = frame
    wire = bytearray(L.encode_frame(seq, ack, mtype, payload, flags))
    flips = single_flips(bytes(wire))
    i, bit = flips[pick % len(flips)]
    wire[i] ^= 1 << bit
    dec = L.FrameDecoder()
    if wire[i]:
        got = dec.feed(bytes(wire))
        assert got == [] and dec.error_count() == 1 and set(dec.errors) <= {"length", "crc"}
    else:
        got = dec.feed(bytes(wire[:i + 1]))  # up to the cut
        assert all((f.seq, f.ack, f.mtype, f.payload, f.flags) == frame for f in got)
        assert got or i == 1 or (dec.error_count() == 1 and set(dec.errors) <= {"length", "short", "cobs"})


# Frames as the host and the board send them (golden requests, a full status reply, the largest
# file_write, a boot event).
REAL_FRAMES = [
    (3, 0, L.HELLO, b"{}", L.FLAG_SYN),
    (0, 5, L.ACK, b"", 0),
    (0, 3, L.HELLO | L.REPLY, b'{"fw":"1.2.0","proto":2,"board":"e6614103e7452d2f","reset":"power_on",'
                              b'"boots":12,"safe":false,"uptime_s":0}', 0),
    (0, 9, L.STATUS | L.REPLY, L.encode_body({
        "host": "ok", "hold_s": 0, "relays": {n: "on" for n in ("host", "printer", "id_reader", "card_reader",
                                                                 "scanner")},
        "safe": False, "faults": 0, "link_errors": 0, "dropped": 0, "c": 24.5, "rh": 45.0, "sensor": "ok",
        "door": "closed", "tamper": False, "presence": False, "fan": 0, "beacon": "ready"}), 0),
    (200, 0, L.FILE_WRITE, L.encode_body({"path": "firmware/" + "a" * 51 + ".mpy", "off": 9999999,
                                          "data": base64.b64encode(bytes(range(256))).decode()}), 0),
    (17, 0, L.EVENT, b'{"ev":"boot","reset":"watchdog","boots":3,"safe":false,"fw":"1.2.0"}', L.FLAG_SYN),
    (0, 0, L.ACK, b"", 0),
]


def test_every_bit_flip_of_real_frames_is_caught() -> None:
    """Each single-bit flip of each real frame, code bytes included, delivers nothing."""
    for frame in REAL_FRAMES:
        wire = L.encode_frame(*frame)
        assert [(f.seq, f.ack, f.mtype, f.payload, f.flags) for f in L.FrameDecoder().feed(wire)] == [frame]
        for i in range(1, len(wire) - 1):
            for bit in range(8):
                flipped = bytearray(wire)
                flipped[i] ^= 1 << bit
                dec = L.FrameDecoder()
                assert dec.feed(bytes(flipped)) == [], (frame, i, bit)
                assert dec.error_count() >= (1 if flipped[i] or i > 1 else 0)


@given(st.lists(st.booleans(), min_size=1, max_size=30), st.sampled_from([L.V2, L.V1]))
def test_link_delivers_exactly_once_over_lossy_wire(losses: list[bool], board: int) -> None:
    """Messages are delivered once and in order however many frames the wire drops, to a board
    of either protocol (the host, speaking both, has to find out which one: half its tries may
    go out in the other protocol until it has heard from the board)."""
    a, b = L.Link(seq0=250, retry_ms=100, tries=2 * len(losses) + 4, versions=L.V1 | L.V2), L.Link(seq0=3, versions=board)
    for i in range(3):
        a.send(L.EVENT, {"i": i})
    got = []
    drops = iter(losses)
    now = 0
    while a.pending() and now < 100_000:
        out = a.poll(now)
        if out and not next(drops, False):
            for f in b.receive(out, now):
                got.append(f.body()["i"])
                b.respond(f)
        back = b.poll(now)
        if back and not next(drops, False):
            a.receive(back, now)
        now += 50
    assert got == [0, 1, 2]
    assert not a.failed
    assert a.peer == b.version
