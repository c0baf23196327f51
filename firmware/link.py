"""Supervisor link codec: COBS framing, CRC-16/CCITT-FALSE, seq/ack, retry, duplicate suppression.

Sans-IO and shared: the board (MicroPython), the host driver and the simulator all import this one
file. Bytes go in through ``Link.receive``, frames come out; frames to send come out of ``Link.poll``.
Time is passed in as integer milliseconds; nothing here sleeps or touches a port.

Frame on the wire (protocol 2)::

    0x00 | COBS( ver_flags seq ack type len_hi len_lo payload... crc_hi crc_lo ) | 0x00

``ver_flags`` = protocol version << 4 | flags (bit 0 = SYN). ``seq`` 1..255 for a reliable frame,
0 for an unreliable one (acks, replies). ``ack`` is the seq being acknowledged, 0 for none.
``len`` is the payload length (big-endian, 0..MAX_PAYLOAD): a frame cut short or run together
with another is rejected as ``length`` whatever its last two bytes happen to be. The payload is
a JSON object (UTF-8) or empty, except in ``file_data`` frames and their replies (binary, see
below). The CRC covers everything before it.

Protocol 1 (firmware 1.1.0 and older) is the same frame without ``len``, and without that check.
The board speaks only 2. The host speaks both, so that it can still supervise and flash a board
that runs 1.1.0: a ``Link`` built with ``versions=V1 | V2`` answers each frame in that frame's
version, sends in the version of the peer's last frame, and until it has heard from the peer
sends every even-numbered try of a frame in protocol 1.
"""

import json

PROTO_VERSION = 2
PROTO_V1 = 1  # firmware 1.1.0 and older: no length field
# Sets of protocol versions (FrameDecoder, Link): bit n = version n.
V1 = 1 << PROTO_V1
V2 = 1 << PROTO_VERSION
FLAG_SYN = 0x01
MAX_PAYLOAD = 480
HEADER_LEN = 6  # protocol 1: 4, no length field
# Longest COBS-encoded frame: header + payload + crc plus one overhead byte per 254.
MAX_ENCODED = HEADER_LEN + MAX_PAYLOAD + 2 + 2

# Bytes of file data per file_write (base64 makes 344 characters of it, which with a 64-character
# path and the JSON keys stays under MAX_PAYLOAD), and at most per file_data frame.
FILE_CHUNK = 256

# Message types. A reply has the request's type with REPLY set and carries the request's seq
# in its ack field, so a reply is also the acknowledgement.
ACK = 0x00
HELLO = 0x01
HEARTBEAT = 0x02
RELAY = 0x03
BEACON = 0x04
HOLD = 0x05
STATUS = 0x06
SERVICE = 0x07
FILE_INFO = 0x08
FILE_WRITE = 0x09
FILE_COMMIT = 0x0A
RESET = 0x0B
# Binary file transfer (firmware 1.4.0): file_open {"path"} starts a file, then each file_data
# payload is ``off`` (4 bytes, big-endian) + 1..FILE_CHUNK bytes of the file, no JSON; its reply
# is the bytes received so far (4 bytes, big-endian) or a JSON {"err"}. A board before 1.4.0
# answers file_open with unknown_type, and the host falls back to file_write.
FILE_OPEN = 0x0C
FILE_DATA = 0x0D
# file_check {"set": "sets/<version>"} (firmware 1.5.1): the board checks the next entry of the
# staged set's set.txt and answers {"checked": entries so far} (firmware/core/setcheck.py). A
# board before 1.5.1 answers unknown_type, and the switch then hashes the whole set itself.
FILE_CHECK = 0x0E
# set_switch {"set": "sets/<version>"} (firmware 1.5.2): once file_check passed every entry of
# that set, the board writes the pointer fwset.json (one rename) and answers {"set"}; refused
# (unchecked) otherwise, leaving the board unchanged. Not a file transfer: no Upload is held
# during it (docs/benchmarks.md). A board before 1.5.2 answers unknown_type, and the host
# commits the pointer as a file instead.
EVENT = 0x40
REPLY = 0x80
# FrameDecoder/Link ``view`` for every type: the board parses each command before its next read.
ANY_TYPE = 0x100


# What feed and receive return when no frame completed: one shared list, never modified, so the
# board's loop allocates nothing for the many reads that end mid-frame.
NO_FRAMES = []


class LinkError(Exception):
    """A frame broke the link protocol; ``reason`` is a short stable word (crc, cobs, ...)."""

    def __init__(self, reason: str, detail: str = "") -> None:
        super().__init__(reason + (": " + detail if detail else ""))
        self.reason = reason


def crc16(data, crc: int = 0xFFFF, n: int = -1) -> int:
    """CRC-16/CCITT-FALSE (poly 0x1021, init 0xFFFF, no reflection, no final xor) of ``data``, or
    of its first ``n`` bytes (no slice of the buffer to allocate)."""
    for i in range(len(data) if n < 0 else n):
        crc ^= data[i] << 8
        for _ in range(8):
            if crc & 0x8000:
                crc = ((crc << 1) ^ 0x1021) & 0xFFFF
            else:
                crc = (crc << 1) & 0xFFFF
    return crc


def cobs_encode(data, pad: int = 0) -> bytes:
    """Consistent Overhead Byte Stuffing: the result contains no 0x00 byte, apart from ``pad``
    delimiter bytes on either side. Written into one buffer of the longest encoding."""
    n = len(data)
    out = bytearray(n + n // 254 + 1 + 2 * pad)  # zero-filled: the delimiters are there already
    code_at = pad
    j = pad + 1
    code = 1
    for byte in data:
        if byte == 0:
            out[code_at] = code
            code_at = j
            j += 1
            code = 1
        else:
            out[j] = byte
            j += 1
            code += 1
            if code == 0xFF:
                out[code_at] = code
                code_at = j
                j += 1
                code = 1
    out[code_at] = code
    n = j + pad
    # Short frames fill the buffer exactly: one copy, no memoryview.
    return bytes(out) if n == len(out) else bytes(memoryview(out)[:n])


def cobs_unstuff(buf, n: int) -> int:
    """Decode COBS in place: ``buf[:n]`` (a bytearray) becomes the decoded bytes, whose length is
    returned. LinkError("cobs") on a malformed block. In place because the board's heap is
    small: the decoded frame is never longer than its encoding, so no second buffer is needed."""
    i = 0
    j = 0
    while i < n:
        code = buf[i]
        if code == 0:
            raise LinkError("cobs", "zero byte inside frame")
        end = i + code
        if end > n:
            raise LinkError("cobs", "block runs past the end")
        i += 1
        while i < end:  # byte by byte: the regions overlap, and a slice would copy
            buf[j] = buf[i]
            i += 1
            j += 1
        if code != 0xFF and i < n:
            buf[j] = 0
            j += 1
    return j


class Frame:
    """One decoded frame. ``payload`` is raw bytes (a memoryview for FrameDecoder's ``view``
    types); ``body()`` parses the JSON object. No ``__repr__``: every method here is in the
    board's heap for good (docs/benchmarks.md), and a debugging aid is not worth 128 B there."""

    def __init__(self, seq: int, ack: int, mtype: int, payload: "bytes | memoryview" = b"", flags: int = 0,
                 version: int = PROTO_VERSION) -> None:
        self.seq = seq
        self.ack = ack
        self.mtype = mtype
        self.payload = payload
        self.flags = flags
        self.version = version

    def body(self) -> dict:
        p = self.payload
        if not p:
            return {}
        try:
            try:
                obj = json.loads(p)  # pyright: ignore[reportArgumentType]  (MicroPython parses a view in place)
            except TypeError:
                obj = json.loads(bytes(p))  # CPython's json takes no memoryview
        except ValueError:
            raise LinkError("payload", "not JSON")
        if not isinstance(obj, dict):
            raise LinkError("payload", "not a JSON object")
        return obj


def encode_body(body) -> bytes:
    """The payload for ``body``: a dict as compact JSON, bytes (a binary payload) as they are."""
    if not body:
        return b""
    if isinstance(body, bytes):
        return body
    return json.dumps(body, separators=(",", ":")).encode()


def encode_frame(seq: int, ack: int, mtype: int, payload: bytes = b"", flags: int = 0,
                 version: int = PROTO_VERSION) -> bytes:
    """Build one delimited wire frame. Raises LinkError("local") for values the protocol forbids."""
    n = len(payload)
    if n > MAX_PAYLOAD:
        raise LinkError("local", "payload too long")
    if not (0 <= seq <= 255 and 0 <= ack <= 255 and 0 <= mtype <= 255 and 0 <= flags <= 15
            and PROTO_V1 <= version <= PROTO_VERSION):
        raise LinkError("local", "header field out of range")
    hdr = HEADER_LEN - 2 if version == PROTO_V1 else HEADER_LEN
    raw = bytearray(hdr + n + 2)
    raw[0] = (version << 4) | flags
    raw[1] = seq
    raw[2] = ack
    raw[3] = mtype
    if hdr == HEADER_LEN:
        raw[4] = n >> 8
        raw[5] = n & 0xFF
    raw[hdr:hdr + n] = payload
    crc = crc16(raw, 0xFFFF, hdr + n)
    raw[-2] = crc >> 8
    raw[-1] = crc & 0xFF
    # The leading delimiter ends any half frame the peer still holds, so one cut frame costs
    # one frame, not two.
    return cobs_encode(raw, 1)


def decode_frame(raw, versions: int = V2, n: int = -1, view: int = -1) -> Frame:
    """Decode the bytes between two delimiters; raises LinkError on any fault.

    ``versions``: the protocol versions accepted (V1, V2 or both); a frame of another version
    that is otherwise sound is a ``version`` fault. With ``n``, ``raw`` is a bytearray whose
    first n bytes are decoded in place (the board's receive buffer: no copy of the frame). A
    frame of type ``view`` (any type for ANY_TYPE) then keeps its payload there too, as a
    memoryview.
    """
    if n < 0:
        raw = bytearray(raw)
        n = len(raw)
    n = cobs_unstuff(raw, n)
    ver = raw[0] >> 4 if n else 0
    hdr = HEADER_LEN - 2 if ver == PROTO_V1 else HEADER_LEN
    if n < hdr + 2:
        raise LinkError("short", "%d bytes" % n)
    # Before the CRC: a truncated frame whose last two bytes happen to be a valid CRC (one in
    # 65,536) must not get through. A bit flip that zeroes a COBS code byte makes exactly that.
    if ver == PROTO_VERSION and ((raw[4] << 8) | raw[5]) != n - HEADER_LEN - 2:
        raise LinkError("length")
    mv = memoryview(raw)
    if crc16(raw, 0xFFFF, n - 2) != (raw[n - 2] << 8) | raw[n - 1]:
        raise LinkError("crc")
    if not (versions >> ver) & 1:
        raise LinkError("version", "protocol %d" % ver)
    payload = mv[hdr:n - 2]
    if raw[3] != view and view != ANY_TYPE:
        payload = bytes(payload)
    return Frame(raw[1], raw[2], raw[3], payload, raw[0] & 0x0F, ver)


class FrameDecoder:
    """Stream decoder: feed any bytes, get whole frames; faults are counted, never raised.

    A fault (bad COBS, short, length, CRC, version, overlong frame) drops bytes up to the next
    0x00 and counts ``errors[reason]``. ``versions``: the protocol versions accepted.

    ``view``: a message type whose payload is handed out as a memoryview of the receive buffer
    instead of a copy, or ANY_TYPE for every frame (the board: no copy of a chunk, nor of a
    command's JSON). It is valid until the next ``feed``; a frame that starts behind it in the
    same ``feed`` copies it out first.
    """

    def __init__(self, max_encoded: int = MAX_ENCODED, versions: int = V2, view: int = -1) -> None:
        # Fixed buffer: no heap growth per byte on the board.
        self._buf = bytearray(max_encoded)
        self._n = 0
        self._overflow = False
        self.versions = versions
        self.view = view
        self._held = None  # the frame whose payload is still in the buffer
        self.errors = {}

    def _fault(self, reason: str) -> None:
        self.errors[reason] = self.errors.get(reason, 0) + 1

    def release(self) -> None:
        """The caller is done with the frames of the last ``feed`` (as the next ``feed`` says
        too): their views need not be kept, and the last frame can be collected."""
        self._held = None

    def error_count(self) -> int:
        total = 0
        for v in self.errors.values():
            total += v
        return total

    def feed(self, data) -> list:
        frames = NO_FRAMES
        self._held = None  # see release()
        buf = self._buf
        cap = len(buf)
        for byte in data:
            if byte == 0:
                if self._overflow:
                    self._fault("overflow")
                elif self._n:
                    try:
                        # Decoded in the receive buffer itself, which is emptied next anyway.
                        frame = decode_frame(buf, self.versions, self._n, self.view)
                        if frames is NO_FRAMES:
                            frames = [frame]
                        else:
                            frames.append(frame)
                        if frame.mtype == self.view or self.view == ANY_TYPE:
                            self._held = frame
                    except LinkError as exc:
                        self._fault(exc.reason)
                self._n = 0
                self._overflow = False
            elif self._overflow:
                continue
            elif self._n < cap:
                if self._held is not None:
                    # A new frame overwrites the buffer: copy the held payload out first.
                    self._held.payload = bytes(self._held.payload)
                    self._held = None
                buf[self._n] = byte
                self._n += 1
            else:
                self._overflow = True
        return frames


class Link:
    """Reliable delivery on top of frames: stop-and-wait per direction, retry, dedup.

    ``send`` queues a reliable message (retried until acked or ``tries`` run out, then reported
    in ``failed``). ``respond`` answers a received reliable frame; the answer is cached so a
    duplicate (our answer was lost, the peer retried) gets the same answer without running the
    command twice. ``receive`` returns new frames for the application: reliable frames not seen
    before, and replies. Pure acks are consumed here.

    The first reliable frames of a link carry SYN until one is acked, and seq starts at a random
    value, so a peer that rebooted is not mistaken for a duplicate of its former self.

    ``versions`` (V2, V1 or V1 | V2) are the protocol versions this end speaks. Answers go out in
    the version of the frame answered, other frames in ``peer``, the version of the last valid
    frame received; before any (``peer`` 0) in ``version``, ours, except that a link that also
    speaks protocol 1 sends every even-numbered try in it: an old board answers the second try,
    a new one the first. ``view``: see FrameDecoder (the board passes ANY_TYPE).
    """

    def __init__(self, seq0: int = 1, retry_ms: int = 250, tries: int = 5, queue_max: int = 16,
                 versions: int = V2, view: int = -1) -> None:
        self._seq = ((seq0 - 1) % 255) + 1
        self.retry_ms = retry_ms
        self.tries = tries
        self.queue_max = queue_max
        self.decoder = FrameDecoder(MAX_ENCODED, versions, view)
        self.version = PROTO_VERSION if versions & V2 else PROTO_V1
        self.peer = 0
        self._queue = []          # [(seq, mtype, payload)] waiting to be sent
        self._inflight = None     # [seq, mtype, payload, sent_at, tries]
        self._syn = True
        self._last_rx = -1
        self._last_rx_syn = False
        self._cached = None       # the last encoded reply, for duplicate suppression
        self._cached_seq = 0      # the seq it answered (two fields: no tuple per reply)
        self._out = []
        self.failed = []          # [(seq, mtype)] given up after all tries (latest queue_max)
        self.gave_up = 0
        self.dropped = 0          # queue overflow (oldest dropped)
        self.duplicates = 0
        self.retries = 0

    def _next_seq(self) -> int:
        seq = self._seq
        self._seq = 1 if seq == 255 else seq + 1
        return seq

    def send(self, mtype: int, body=None) -> int:
        payload = encode_body(body)
        if len(payload) > MAX_PAYLOAD:
            raise LinkError("local", "payload too long")
        if len(self._queue) >= self.queue_max:
            self._queue.pop(0)
            self.dropped += 1
        seq = self._next_seq()
        self._queue.append((seq, mtype, payload))
        return seq

    def respond(self, frame: Frame, mtype: int = ACK, body=None) -> None:
        data = encode_frame(0, frame.seq, mtype, encode_body(body), 0, frame.version)
        if frame.seq:
            self._cached_seq = frame.seq
            self._cached = data
        self._out.append(data)

    def pending(self) -> int:
        return len(self._queue) + (1 if self._inflight else 0)

    def receive(self, data, now: int) -> list:
        # The frames for the application are kept in the decoder's own list, compacted in place
        # (no second list per frame on the board).
        frames = self.decoder.feed(data)
        kept = 0
        for frame in frames:
            self.peer = frame.version
            if frame.ack and self._inflight and frame.ack == self._inflight[0]:
                self._inflight = None
                self._syn = False
            if frame.mtype == ACK and not frame.seq:
                continue
            if frame.seq:
                syn = bool(frame.flags & FLAG_SYN)
                if frame.seq == self._last_rx and syn == self._last_rx_syn:
                    self.duplicates += 1
                    if self._cached is not None and self._cached_seq == frame.seq:
                        self._out.append(self._cached)
                    else:
                        self._out.append(encode_frame(0, frame.seq, ACK, b"", 0, frame.version))
                    continue
                self._last_rx = frame.seq
                self._last_rx_syn = syn
            frames[kept] = frame
            kept += 1
        if kept < len(frames):
            del frames[kept:]
        return frames

    def poll(self, now: int) -> bytes:
        """Bytes to write now: answers, a new frame, or a retry. Call every loop pass."""
        inflight = self._inflight
        if inflight is not None and now - inflight[3] >= self.retry_ms:
            if inflight[4] >= self.tries:
                self.gave_up += 1
                self.failed.append((inflight[0], inflight[1]))
                if len(self.failed) > self.queue_max:
                    # Nobody drains this on the board: keep it bounded for weeks without a host.
                    self.failed.pop(0)
                self._inflight = inflight = None
            else:
                inflight[3] = now
                inflight[4] += 1
                self.retries += 1
                self._out.append(self._encode(inflight))
        if inflight is None and self._queue:
            seq, mtype, payload = self._queue.pop(0)
            inflight = [seq, mtype, payload, now, 1]
            self._inflight = inflight
            self._out.append(self._encode(inflight))
        out = self._out
        if not out:
            return b""
        # Mostly one frame (a reply): handed out as it is, not copied by a join; and the list
        # is emptied, not replaced.
        data = out[0] if len(out) == 1 else b"".join(out)
        out.clear()
        return data

    def _encode(self, inflight) -> bytes:
        version = self.peer
        if not version:
            # A board on firmware 1.1.0 drops protocol 2 frames as "version" faults: when we
            # speak protocol 1 too (the host), even-numbered tries go out in it.
            version = PROTO_V1 if self.decoder.versions & V1 and not inflight[4] & 1 else self.version
        return encode_frame(inflight[0], 0, inflight[1], inflight[2], FLAG_SYN if self._syn else 0, version)
