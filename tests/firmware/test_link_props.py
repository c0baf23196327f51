"""Property tests for the link codec: any bytes give frames or counted faults, nothing else."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from firmware import link as L

frames_st = st.builds(
    lambda seq, ack, mtype, payload, flags: (seq, ack, mtype, payload, flags),
    st.integers(0, 255), st.integers(0, 255), st.integers(0, 255),
    st.binary(max_size=L.MAX_PAYLOAD), st.integers(0, 15),
)


@given(st.binary(max_size=600))
def test_cobs_roundtrip(data: bytes) -> None:
    enc = L.cobs_encode(data)
    assert 0 not in enc
    assert L.cobs_decode(enc) == data


@given(st.binary(max_size=2000), st.lists(st.integers(1, 64), max_size=20))
@settings(max_examples=300)
def test_decoder_never_raises(data: bytes, cuts: list[int]) -> None:
    dec = L.FrameDecoder()
    pos = 0
    for n in cuts + [len(data)]:
        for frame in dec.feed(data[pos:pos + n]):
            assert isinstance(frame, L.Frame)
            try:
                frame.body()
            except L.LinkError as exc:
                assert exc.reason == "payload"
        pos += n


@given(frames_st, st.binary(max_size=300), st.integers(0, 40))
def test_frame_survives_garbage_and_cut(frame, junk: bytes, cut: int) -> None:
    seq, ack, mtype, payload, flags = frame
    wire = L.encode_frame(seq, ack, mtype, payload, flags)
    dec = L.FrameDecoder()
    got = dec.feed(junk + wire[:cut]) + dec.feed(wire[cut:])
    ours = [f for f in got if (f.seq, f.ack, f.mtype, f.payload, f.flags) == frame]
    assert len(ours) == 1


@given(frames_st, st.integers(0, 10_000), st.integers(0, 7))
def test_single_bit_flip_is_detected(frame, pos: int, bit: int) -> None:
    seq, ack, mtype, payload, flags = frame
    wire = bytearray(L.encode_frame(seq, ack, mtype, payload, flags))
    i = 1 + pos % (len(wire) - 2)  # inside the frame, not the delimiters
    wire[i] ^= 1 << bit
    dec = L.FrameDecoder()
    got = dec.feed(bytes(wire))
    # A flipped bit never yields a different frame: it is dropped and counted (or, if it made a
    # 0x00, splits the frame into faults).
    assert got == [] and dec.error_count() >= 1


@given(st.lists(st.booleans(), min_size=1, max_size=30))
def test_link_delivers_exactly_once_over_lossy_wire(losses: list[bool]) -> None:
    """Messages are delivered once and in order however many frames the wire drops."""
    a, b = L.Link(seq0=250, retry_ms=100, tries=len(losses) + 2), L.Link(seq0=3)
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
