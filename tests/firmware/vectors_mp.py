"""Test vectors for the firmware core that run unchanged on CPython and on MicroPython 1.27.

Only MicroPython-compatible code here: plain functions named ``t_*`` using ``check``; run as a
script it prints one line per failure and a final "OK n" (n = vectors passed) or "FAIL n".
tests/firmware/test_vectors.py runs it both ways.
"""

from firmware import bootsel
from firmware import link as L
from firmware.core import hostwatch as HW
from firmware.core.beacon import Beacon
from firmware.core.bootguard import BootGuard
from firmware.core.enclosure import Debounced, Enclosure, Fan, SensorError, crc8, parse_sht3x
from firmware.core.files import FileTransfer, check_path, sha256_of
from firmware.core.relays import CommandError, RelayBank
from firmware.core.supervisor import Supervisor
from firmware.hal.host import HostHal, MemoryFs, MemoryStore, SimPin, SimPWM, sht3x_frame


def check(cond, what="") -> None:
    if not cond:
        raise AssertionError(what)


def cobs_decode(data) -> bytes:
    """Inverse of link.cobs_encode (LinkError("cobs") on a malformed block). A test helper: the
    board only decodes in place (link.cobs_unstuff), so the codec does not carry a copying one."""
    buf = bytearray(data)
    return bytes(buf[:L.cobs_unstuff(buf, len(buf))])


def unhex(s: str) -> bytes:
    return bytes(int(s[i:i + 2], 16) for i in range(0, len(s), 2))


# -- codec ------------------------------------------------------------------------------------

def t_crc16_check_value():
    check(L.crc16(b"123456789") == 0x29B1, "CRC-16/CCITT-FALSE check value")
    check(L.crc16(b"") == 0xFFFF)


def t_cobs_vectors():
    # Vectors from the COBS paper / Wikipedia table.
    cases = [
        ("00", "0101"),
        ("0000", "010101"),
        ("00110000", "0102110101"),
        ("11223344", "0511223344"),
        ("11000000", "0211010101"),
    ]
    for raw, enc in cases:
        check(L.cobs_encode(unhex(raw)) == unhex(enc), raw)
        check(cobs_decode(unhex(enc)) == unhex(raw), enc)
    block = bytes(range(1, 255))
    check(L.cobs_encode(block) == b"\xff" + block + b"\x01", "254 non-zero bytes")
    check(cobs_decode(b"\xff" + block + b"\x01") == block)


def t_frame_golden():
    # Protocol 2: the length field (00 02, 00 00) sits between type and payload.
    check(L.encode_frame(3, 0, L.HELLO, b"{}") == unhex("00032003020106027b7d2d7c00"), "hello frame")
    check(L.encode_frame(0, 5, L.ACK) == unhex("0002200205010103875d00"), "ack frame")
    check(L.encode_frame(7, 0, L.HEARTBEAT, b"", L.FLAG_SYN) == unhex("0003210702020103770c00"), "syn")
    f = L.decode_frame(unhex("032003020106027b7d2d7c"))
    check(f.seq == 3 and f.ack == 0 and f.mtype == L.HELLO and f.body() == {} and f.version == 2, "decode")


def reason_of(fn, *args) -> str:
    try:
        fn(*args)
    except L.LinkError as exc:
        return exc.reason
    return ""


def t_frame_golden_protocol_1():
    # Byte for byte what firmware 1.1.0 sends and takes: the host still speaks it to such boards.
    check(L.encode_frame(3, 0, L.HELLO, b"{}", 0, L.PROTO_V1) == unhex("0003100306017b7db6ef00"), "hello")
    check(L.encode_frame(0, 5, L.ACK, b"", 0, L.PROTO_V1) == unhex("000210020503609200"), "ack")
    check(L.encode_frame(7, 0, L.HEARTBEAT, b"", L.FLAG_SYN, L.PROTO_V1) == unhex("0003110704024c0100"), "syn")
    v1 = unhex("03100306017b7db6ef")
    v2 = unhex("032003020106027b7d2d7c")
    for versions in (L.V1, L.V1 | L.V2):
        f = L.decode_frame(v1, versions)
        check(f.version == 1 and f.seq == 3 and f.mtype == L.HELLO and f.body() == {}, "decode v1")
    check(L.decode_frame(v2, L.V1 | L.V2).version == 2, "the host takes both")
    check(reason_of(L.decode_frame, v1) == "version", "the board takes protocol 2 only")
    check(reason_of(L.decode_frame, v2, L.V1) == "version", "firmware 1.1.0 takes protocol 1 only")
    check(reason_of(L.encode_frame, 1, 0, L.HELLO, b"", 0, 3) == "local", "no protocol 3 to send")


def faults_of(data):
    d = L.FrameDecoder()
    frames = d.feed(data)
    return frames, d


def t_decoder_corrupted_frame():
    good = L.encode_frame(1, 0, L.STATUS, b'{"a":1}')
    bad = bytearray(good)
    bad[5] ^= 0x40
    frames, d = faults_of(bytes(bad) + good)
    check(len(frames) == 1 and frames[0].seq == 1, "good frame after a bad one")
    check(d.errors.get("crc", 0) + d.errors.get("cobs", 0) == 1, "one fault counted")


def t_decoder_cut_frame():
    good = L.encode_frame(9, 0, L.HEARTBEAT)
    half = good[:len(good) // 2]
    frames, d = faults_of(half + good + good[:3])
    check(len(frames) == 1 and frames[0].seq == 9, "resync after half a frame")
    check(d.error_count() == 1, "the half frame is one fault")
    more = d.feed(good[3:])
    check(len(more) == 1 and more[0].seq == 9, "a frame split over two reads")


def t_decoder_junk_and_overflow():
    frames, d = faults_of(b"\x01\x02\x03\x00" + b"\x55" * 2000 + b"\x00" + L.encode_frame(4, 0, L.HELLO))
    check(len(frames) == 1, "frame after junk")
    check(d.errors.get("overflow") == 1, "overflow counted")
    frames, d = faults_of(b"\x02\x10\x00")
    check(not frames and d.errors.get("short") == 1, "short frame")
    frames, d = faults_of(b"\x00" + L.cobs_encode(with_crc(b"\x30\x01\x00\x01\x00\x00")) + b"\x00")
    check(not frames and d.errors.get("version") == 1, "unknown protocol version")


def with_crc(raw) -> bytes:
    crc = L.crc16(raw)
    return bytes(raw) + bytes([crc >> 8, crc & 0xFF])


def t_length_field_mismatch():
    # Sound COBS and a valid CRC, but a payload shorter or longer than the header says: "length".
    for header, payload in (("200300060008", b'{"a":1}'), ("200300060006", b'{"a":1}'), ("200300060100", b"")):
        frames, d = faults_of(b"\x00" + L.cobs_encode(with_crc(unhex(header) + payload)) + b"\x00")
        check(not frames and d.errors == {"length": 1}, header)
    frames, d = faults_of(b"\x00" + L.cobs_encode(with_crc(unhex("200300060007") + b'{"a":1}')) + b"\x00")
    check(len(frames) == 1 and frames[0].body() == {"a": 1}, "length that matches")
    frames, d = faults_of(b"\x00" + L.cobs_encode(with_crc(unhex("2003000600"))) + b"\x00")
    check(not frames and d.errors == {"short": 1}, "no room for the length field")


def cut_frame(version):
    """A frame built so that one bit flip (its last COBS code byte, 0x04, to 0x00) cuts it into
    a shorter frame whose last two bytes are that frame's valid CRC-16, and a stray tail.

    That is the flip protocol 1 cannot catch: by chance one cut in 65,536 ends on a valid CRC;
    here it does by construction. Payload: inner, CRC of (header + inner), 0x00, one byte t; t is
    chosen so the frame's own CRC has no zero byte, so the 0x00 above is the last one in the
    frame and the last block is [04 t crc crc].
    """
    inner = b'{"a":1}'
    for t in range(0x20, 0x100):
        head = bytearray([version << 4, 5, 0, L.STATUS])
        if version == L.PROTO_VERSION:
            head += bytes([0, len(inner) + 4])
        payload = with_crc(head + inner)[len(head):] + bytes([0, t])
        crc = L.crc16(head + payload)
        if crc >> 8 and crc & 0xFF:
            wire = bytearray(L.encode_frame(5, 0, L.STATUS, payload, 0, version))
            check(wire[-5:-1] == bytes([4, t, crc >> 8, crc & 0xFF]), "last block")
            wire[-5] ^= 0x04
            return bytes(wire)
    raise AssertionError("no tail byte gives a CRC without a zero byte")


def t_cut_frame_with_valid_crc_is_rejected():
    # Protocol 1, as firmware 1.1.0 and a host talking to it decode it: the flip goes unnoticed.
    for versions in (L.V1, L.V1 | L.V2):
        d = L.FrameDecoder(L.MAX_ENCODED, versions)
        frames = d.feed(cut_frame(L.PROTO_V1))
        check(len(frames) == 1 and frames[0].seq == 5 and frames[0].body() == {"a": 1}, "the old gap")
    # Protocol 2: the front part is a "length" fault, the tail a "cobs" fault; nothing delivered.
    for versions in (L.V2, L.V1 | L.V2):
        d = L.FrameDecoder(L.MAX_ENCODED, versions)
        frames = d.feed(cut_frame(L.PROTO_VERSION))
        check(frames == [] and d.errors == {"length": 1, "cobs": 1}, "cut protocol 2 frame")


def t_payload_errors():
    for payload, ok in ((b"[1]", False), (b"{bad", False), (b"\xff\xfe", False), (b'{"x":2}', True)):
        frame = L.Frame(1, 0, L.STATUS, payload)
        try:
            frame.body()
            check(ok, "payload %r accepted" % payload)
        except L.LinkError as exc:
            check(not ok and exc.reason == "payload", "payload %r" % payload)
    try:
        L.encode_frame(1, 0, L.STATUS, b"x" * (L.MAX_PAYLOAD + 1))
        check(False, "overlong payload encoded")
    except L.LinkError as exc:
        check(exc.reason == "local")


def pair(seq_a=10, seq_b=100):
    return L.Link(seq0=seq_a), L.Link(seq0=seq_b)


def t_link_retry_and_dedup():
    a, b = pair()
    seq = a.send(L.HEARTBEAT)
    first = a.poll(0)
    check(first and a.pending() == 1)
    # Lost on the wire: nothing before the retry time, then the same frame again.
    check(a.poll(100) == b"")
    again = a.poll(250)
    check(again == first and a.retries == 1, "retry resends the same frame")
    got = b.receive(again, 250)
    check(len(got) == 1 and got[0].seq == seq)
    b.respond(got[0], L.HEARTBEAT | L.REPLY, {"n": 1})
    reply = b.poll(250)
    # The reply is lost too: the retry is a duplicate and gets the cached reply, not a new run.
    dup = b.receive(a.poll(500), 500)
    check(dup == [] and b.duplicates == 1, "duplicate suppressed")
    check(b.poll(500) == reply, "cached reply resent")
    r = a.receive(reply, 510)
    check(len(r) == 1 and r[0].ack == seq and a.pending() == 0, "reply acknowledges")


def t_link_gives_up():
    a = L.Link(seq0=1, retry_ms=100, tries=3)
    seq = a.send(L.EVENT, {"ev": "x"})
    sent = 0
    for now in range(0, 1000, 50):
        if a.poll(now):
            sent += 1
    check(sent == 3 and a.failed == [(seq, L.EVENT)], "three tries then failed")


def t_link_queue_bound_and_wrap():
    a = L.Link(seq0=255, queue_max=4)
    seqs = [a.send(L.EVENT, {"i": i}) for i in range(6)]
    check(seqs[0] == 255 and seqs[1] == 1, "seq wraps 255 -> 1, never 0")
    check(a.dropped == 2, "oldest dropped when full")


def exchange(host, board, now):
    """One round: the host's frames to the board, the board answers requests, and back."""
    for f in board.receive(host.poll(now), now):
        board.respond(f, f.mtype | L.REPLY, {"ok": 1})
    return host.receive(board.poll(now), now)


def t_link_talks_to_a_protocol_1_board():
    host = L.Link(seq0=20, versions=L.V1 | L.V2)
    board = L.Link(seq0=60, versions=L.V1)  # firmware 1.1.0
    check(board.version == 1 and host.version == 2 and host.peer == 0)
    seq = host.send(L.HELLO)
    check(exchange(host, board, 0) == [] and board.decoder.errors == {"version": 1}, "try 1: protocol 2, dropped")
    got = exchange(host, board, 250)
    check(len(got) == 1 and got[0].ack == seq and got[0].version == 1, "try 2 in protocol 1 is answered")
    check(host.peer == 1 and host.pending() == 0)
    host.send(L.HEARTBEAT)
    check(len(exchange(host, board, 300)) == 1, "from now on protocol 1 at the first try")
    board.send(L.EVENT, {"ev": "door"})
    ev = host.receive(board.poll(310), 310)
    host.respond(ev[0])
    board.receive(host.poll(310), 310)
    check(ev[0].version == 1 and board.pending() == 0, "its events acknowledged in protocol 1")
    check(board.decoder.errors == {"version": 1} and host.decoder.errors == {}, "no other fault")


def t_link_protocol_2_board_never_sees_protocol_1():
    host = L.Link(seq0=20, versions=L.V1 | L.V2)
    board = L.Link(seq0=60)
    host.send(L.HELLO)
    check(len(exchange(host, board, 0)) == 1 and host.peer == 2, "answered at the first try")
    host.send(L.STATUS)
    host.poll(10)  # lost on the wire: the retries stay in protocol 2 now that the peer is known
    for now in (260, 510):
        host.poll(now)
    got = exchange(host, board, 760)
    check(len(got) == 1 and host.retries == 3, "retried")
    check(board.decoder.errors == {}, "no protocol 1 frame reached the board")


def t_link_peer_reboot_not_duplicate():
    a, b = pair(5, 50)
    a.send(L.HELLO)
    got = b.receive(a.poll(0), 0)
    b.respond(got[0])
    a.receive(b.poll(0), 0)
    a.send(L.HEARTBEAT)
    f = b.receive(a.poll(10), 10)
    check(len(f) == 1 and not (f[0].flags & L.FLAG_SYN), "SYN cleared after first ack")
    a2 = L.Link(seq0=f[0].seq)  # rebooted peer that happens to reuse the same seq
    a2.send(L.HELLO)
    again = b.receive(a2.poll(20), 20)
    check(len(again) == 1, "rebooted peer's SYN frame is new, not a duplicate")


# -- relays and host watchdog -----------------------------------------------------------------

class Rec:
    def __init__(self):
        self.events = []

    def __call__(self, ev, fields):
        self.events.append((ev, fields))

    def actions(self):
        return [f.get("action") for ev, f in self.events if ev == "watchdog"]


def make_watchdog():
    hal = HostHal(lambda: 0)
    rec = Rec()
    bank = RelayBank(hal.relays, rec)
    return HW.HostWatchdog(bank, rec, 0), bank, rec, hal


def run(wd, bank, start, end, step=1000):
    t = start
    while t <= end:
        bank.tick(t)
        wd.tick(t)
        t += step


def t_relay_min_off_and_errors():
    hal = HostHal(lambda: 0)
    rec = Rec()
    bank = RelayBank(hal.relays, rec)
    check(bank.pulse("printer", 100, 0) == 2000, "clamped to minimum off time")
    check(hal.relays["printer"].level == 0)
    for name, off, reason in (("printer", 5000, "busy"), ("host", 5000, "protected_relay"),
                              ("nope", 5000, "unknown_relay"), ("scanner", 10 ** 7, "off_too_long")):
        try:
            bank.pulse(name, off, 10)
            check(False, name)
        except CommandError as exc:
            check(exc.reason == reason, reason)
    bank.tick(1999)
    check(hal.relays["printer"].level == 0, "still off before minimum")
    bank.tick(2000)
    check(hal.relays["printer"].level == 1, "back on")


def t_heartbeat_boundaries():
    wd, bank, rec, hal = make_watchdog()
    run(wd, bank, 0, 119999, 119999)
    check(wd.state == HW.OK, "no warning at 119.999 s")
    run(wd, bank, 120000, 120000)
    check(wd.state == HW.WARNING and rec.actions() == ["warning"], "warning at 120 s")
    wd.heartbeat(150000)
    check(wd.state == HW.OK and rec.actions()[-1] == "host_ok", "heartbeat returns during warning")
    run(wd, bank, 150000 + 179999, 150000 + 179999)
    check(wd.state == HW.WARNING and hal.relays["host"].level == 1, "no cycle at 179.999 s")
    run(wd, bank, 330000, 330000)
    check(wd.state == HW.POWER_CYCLE and hal.relays["host"].level == 0, "power off at 180 s")
    wd.heartbeat(335000)  # impossible while off, but must not leave the relay off
    run(wd, bank, 339999, 339999)
    check(hal.relays["host"].level == 0, "off for 10 s")
    run(wd, bank, 340000, 340000)
    check(hal.relays["host"].level == 1 and wd.state == HW.OK, "on again after 10 s")
    check(rec.actions()[-2:] == ["power_off", "power_on"])
    run(wd, bank, 340000 + 119000, 340000 + 119000)
    check(wd.state == HW.OK, "silence clock restarted at power on")


def t_power_cycle_limit():
    wd, bank, rec, hal = make_watchdog()
    run(wd, bank, 0, 3 * 190000 + 180000, 1000)
    offs = [e for e in hal.relay_log if not e[2]]
    check(len(offs) == 3, "three power cycles in the first hour: %d" % len(offs))
    check(wd.state == HW.UNRECOVERABLE and rec.actions()[-1] == "unrecoverable", "then unrecoverable")
    run(wd, bank, 3 * 190000 + 181000, 3600000 + 200000, 5000)
    check(len([e for e in hal.relay_log if not e[2]]) == 3, "power stays on")
    check(rec.actions().count("unrecoverable") == 1, "reported once")
    wd.heartbeat(3900000)
    check(wd.state == HW.OK, "heartbeat clears unrecoverable")
    run(wd, bank, 3900000, 3900000 + 180000, 1000)
    check(len([e for e in hal.relay_log if not e[2]]) == 4, "window moved on: cycling allowed again")


def t_maintenance_hold_expiry():
    wd, bank, rec, hal = make_watchdog()
    check(wd.hold(1000, 600) == 600)
    run(wd, bank, 1000, 600999, 1000)
    check(wd.state == HW.OK and hal.relay_log == [], "no action during hold")
    check(wd.hold_left_s(300000) == 301)
    run(wd, bank, 601000, 601000)
    check(rec.actions()[-1] == "hold_expired", "expiry reported")
    run(wd, bank, 601000 + 119000, 601000 + 119000)
    check(wd.state == HW.OK, "grace period starts at expiry")
    run(wd, bank, 601000 + 180000, 601000 + 180000)
    check(wd.state == HW.POWER_CYCLE, "then the normal timeline")
    wd2, bank2, rec2, hal2 = make_watchdog()
    wd2.hold(0, 100)
    wd2.hold(50000, 0)
    check(rec2.actions()[-1] == "hold_cleared" and wd2.hold_left_s(50000) == 0, "hold cleared")


# -- power-cycle history in flash -------------------------------------------------------------

class CountingFs(MemoryFs):
    """MemoryFs that counts writes: the history may be written only when a power cycle happens."""

    def __init__(self, files=None):
        super().__init__(files)
        self.writes = 0

    def write(self, rel, offset, data):
        self.writes += 1
        return super().write(rel, offset, data)


def history_watchdog(fs, boot, now):
    hal = HostHal(lambda: 0)
    rec = Rec()
    bank = RelayBank(hal.relays, rec)
    return HW.HostWatchdog(bank, rec, now, "host", fs, boot), bank, rec, hal


def host_offs(hal):
    return len([e for e in hal.relay_log if e[1] == "host" and not e[2]])


def history_in(fs):
    import json
    return json.loads(fs.files[HW.HISTORY])


def t_history_board_reboot_keeps_unrecoverable_for_an_hour():
    fs = CountingFs()
    wd, bank, rec, hal = history_watchdog(fs, 1, 0)
    check(wd.cycles == [] and wd.faults == 0, "no file: no history, no fault")
    run(wd, bank, 0, 3 * 190000 + 180000, 1000)
    check(host_offs(hal) == 3 and wd.state == HW.UNRECOVERABLE, "three power cycles, then unrecoverable")
    check(history_in(fs) == [[1, 180000], [1, 370000], [1, 560000]], "each one in flash")
    check(fs.writes == 3 and sorted(fs.files) == [HW.HISTORY], "one write per power cycle, temp file renamed")
    # The board resets (brown-out, its own watchdog, a flash) at 800 s; its clock goes on from
    # there in the simulator, from 0 on the board: only the uptime counts.
    s = 800000
    wd, bank, rec, hal = history_watchdog(fs, 2, s)
    check(len(wd.cycles) == 3, "history loaded")
    run(wd, bank, s, s + 180000, 1000)
    check(wd.state == HW.UNRECOVERABLE and host_offs(hal) == 0, "no power cycle after the reboot")
    check(rec.actions() == ["warning", "unrecoverable"], "reported as before")
    wd.heartbeat(s + 1000000)
    run(wd, bank, s + 1000000, s + 1180000, 1000)
    check(wd.state == HW.UNRECOVERABLE and host_offs(hal) == 0, "still within this boot's first hour")
    wd.heartbeat(s + 3499000)
    run(wd, bank, s + 3499000, s + 3679000, 1000)
    check(wd.state == HW.POWER_CYCLE and host_offs(hal) == 1, "an hour of this boot's uptime: cycling again")
    check(history_in(fs) == [[2, 3679000]], "earlier boots' entries expired")
    check(fs.writes == 4, "written only at that power cycle")


def t_history_corrupt_file_is_no_history_and_a_fault():
    for bad in (b"", b"garbage", b"{", b'{"ab":1}', b"7", b"[[1]]", b'[["x",1]]', b"[[1,-5]]", b"[[1,2,3]]",
                b"[null]", b"[" + b"[1,2]," * 50 + b"[1,2]]"):
        fs = CountingFs({HW.HISTORY: bad})
        wd, bank, rec, hal = history_watchdog(fs, 4, 0)
        check(wd.cycles == [] and wd.faults == 1, "corrupt %r" % bad)
        run(wd, bank, 0, 3 * 190000 + 180000, 5000)
        check(host_offs(hal) == 3, "cycles as with no history: %r" % bad)
        check(len(history_in(fs)) == 3, "a good file written over it")
    hal = HostHal(lambda: 0, files=MemoryFs({HW.HISTORY: b"\xff\xfe"}))
    sup = Supervisor(hal, 0)
    check(sup.status(0)["faults"] == 1, "the fault shows in status")


def t_history_missing_file_and_failing_flash():
    fs = MemoryFs({"main.py": b"x"})
    wd, bank, rec, hal = history_watchdog(fs, 1, 0)
    check(wd.cycles == [] and wd.faults == 0, "missing: no history, not a fault")
    fs.fail_after = 0  # the flash is full: the power cycle happens all the same, counted as a fault
    run(wd, bank, 0, 180000, 1000)
    check(host_offs(hal) == 1 and wd.faults == 1 and HW.HISTORY not in fs.files, "cycled without a record")
    check(len(wd.cycles) == 1, "still limited in RAM")
    check(Supervisor(HostHal(lambda: 0, files=MemoryFs()), 0).status(0)["faults"] == 0, "fresh board")


def t_history_reset_boot_counter_errs_on_the_safe_side():
    # boot.json lost: the counter starts again and an old entry claims this boot, at a later time.
    # It counts until an hour after that time, later than an earlier boot's entry would.
    fs = MemoryFs({HW.HISTORY: b"[[1,500000],[1,690000],[1,880000]]"})
    wd, bank, rec, hal = history_watchdog(fs, 1, 0)
    run(wd, bank, 0, 3600000 + 180000, 5000)
    check(host_offs(hal) == 0 and wd.state == HW.UNRECOVERABLE, "not yet after an hour of uptime")
    wd.heartbeat(4200000)
    run(wd, bank, 4200000, 4380000, 5000)
    check(host_offs(hal) == 1, "one entry expired (500 s + 1 h): one power cycle allowed")


def t_supervisor_history_across_board_reboot():
    store = MemoryStore()
    fs = MemoryFs()
    hal = HostHal(lambda: 0, store=store, files=fs)
    sup = Supervisor(hal, 0)
    for t in range(0, 3 * 190000 + 181000, 1000):
        sup.tick(t)
    check(sup.watchdog.state == HW.UNRECOVERABLE and host_offs(hal) == 3, "three power cycles, then unrecoverable")
    hal2 = HostHal(lambda: 0, store=store, files=fs, cause="watchdog")
    sup2 = Supervisor(hal2, 0)
    check(sup2.guard.boots == 2 and sup2.watchdog.boot == 2, "the boot counter is the history's time base")
    for t in range(0, 181000, 1000):
        sup2.tick(t)
    check(sup2.watchdog.state == HW.UNRECOVERABLE and host_offs(hal2) == 0, "the limit survived the reset")
    check(sup2.status(181000)["host"] == "unrecoverable" and sup2.status(181000)["faults"] == 0)


# -- enclosure, beacon, boot guard ------------------------------------------------------------

def t_sht3x_crc_and_conversion():
    check(crc8(b"\xbe\xef") == 0x92, "Sensirion CRC-8 datasheet example")
    c, rh = parse_sht3x(sht3x_frame(24.0, 45.0))
    check(abs(c - 24.0) < 0.01 and abs(rh - 45.0) < 0.01)
    c, rh = parse_sht3x(unhex("6666" + "93" + "8000" + "a2"))
    check(abs(c - 25.0) < 0.01 and abs(rh - 50.0) < 0.01, "raw 0x6666/0x8000")
    for bad in (b"\xff" * 6, b"\x00\x00"):
        try:
            parse_sht3x(bad)
            check(False, "bad frame accepted")
        except SensorError:
            pass


def t_stuck_sensor_reported_loop_runs():
    hal = HostHal(lambda: 0)
    rec = Rec()
    enc = Enclosure(hal, rec, 0)
    for t in range(0, 6000, 10):
        enc.tick(t)
    check(enc.sensor_status == "ok" and enc.celsius is not None)
    hal.sht3x.stuck = "bus"
    for t in range(6000, 30000, 10):
        enc.tick(t)
    check(enc.sensor_status == "failed" and enc.celsius is None, "stuck bus reported")
    check(hal.fan.duty == 65535, "fan full while temperature unknown")
    hal.sht3x.stuck = "ff"
    hal.door.value(1)
    for t in range(30000, 31000, 10):
        enc.tick(t)
    check(enc.sensor_error == "crc" and ("door", {"open": True}) in rec.events, "loop keeps running")
    hal.sht3x.stuck = ""
    for t in range(31000, 45000, 10):
        enc.tick(t)
    check(enc.sensor_status == "ok", "recovers")


def t_debounce():
    pin = SimPin(0)
    d = Debounced(pin, 0, 50)
    pin.value(1)
    check(d.update(10) is None and d.update(40) is None)
    pin.value(0)
    check(d.update(45) is None, "bounce")
    pin.value(1)
    check(d.update(50) is None and d.update(99) is None)
    check(d.update(100) is True and d.state, "stable 50 ms")
    check(d.update(200) is None)


def t_fan_hysteresis():
    pwm = SimPWM()
    fan = Fan(pwm)
    for c, running in ((30, False), (39.9, False), (40, True), (37, True), (35, True), (34.9, False), (38, False)):
        fan.update(c)
        check(fan.running == running, "fan at %s" % c)
    fan.update(50)
    check(fan.duty == 100)
    fan.update(45)
    check(fan.duty == 70)


def t_beacon_patterns():
    pin = SimPin(0)
    b = Beacon(pin, 0, "ready")
    check(pin.value() == 1)
    check(b.set("busy", 1000) and pin.value() == 1)
    b.tick(1500)
    check(pin.value() == 0)
    b.set("degraded", 0)
    check([b.level(t) for t in (0, 150, 300, 450, 1499, 1500)] == [1, 0, 1, 0, 0, 1])
    check(not b.set("disco", 0) and b.pattern == "degraded")


def t_boot_guard_safe_mode():
    store = MemoryStore()
    for i in range(3):
        g = BootGuard(store)
        check(not g.begin(), "boot %d normal" % i)
        g.tick(59999)
    g = BootGuard(store)
    check(g.begin() and g.boots == 4, "safe after 3 short boots")
    g.tick(60000)
    check(store.record == {"boots": 4, "short": 0})
    check(not BootGuard(store).begin(), "a long boot clears it")
    store.record = {"boots": "x"}
    g = BootGuard(store)
    check(not g.begin() and g.boots == 1, "corrupt record reset")


def t_supervisor_safe_mode_and_commands():
    hal = HostHal(lambda: 0, store=MemoryStore({"boots": 7, "short": 3}), cause="watchdog")
    sup = Supervisor(hal, 0)
    check(sup.safe and sup.enclosure is None and sup.beacon is None)
    host = L.Link(seq0=77)
    host.send(L.HELLO)
    host.send(L.BEACON, {"pattern": "ready"})
    host.send(L.RELAY, {"relay": "printer", "off_s": 3})
    replies = {}
    events = []
    for t in range(0, 1000, 10):
        sup.receive(host.poll(t), t)
        for f in host.receive(sup.tick(t), t):
            if f.mtype == L.EVENT:
                events.append(f.body())
                host.respond(f)
            else:
                replies[f.mtype & 0x7F] = f.body()
    h = replies[L.HELLO]
    check(h["reset"] == "watchdog" and h["boots"] == 8 and h["safe"] is True, "hello")
    check(replies[L.BEACON] == {"err": "safe_mode"}, "no beacon in safe mode")
    check(replies[L.RELAY]["off_ms"] == 3000, "relays still work")
    check(events[0]["ev"] == "boot" and events[0]["reset"] == "watchdog")


def t_supervisor_service_mode_request():
    sup = Supervisor(HostHal(lambda: 0), 0)
    host = L.Link(seq0=9)
    host.send(L.SERVICE, {"seconds": 5})
    host.send(L.SERVICE, {"seconds": 900})
    replies = []
    for t in range(0, 600, 10):
        sup.receive(host.poll(t), t)
        for f in host.receive(sup.tick(t), t):
            if f.mtype == L.SERVICE | L.REPLY:
                replies.append(f.body())
            elif f.seq:
                host.respond(f)
    check(replies == [{"err": "bad_args"}, {"service_s": 900}], "service bounds")
    check(sup.service_s == 900, "main loop sees the request")


def t_supervisor_fault_makes_unhealthy():
    hal = HostHal(lambda: 0)
    sup = Supervisor(hal, 0)

    class Broken:
        def tick(self, now):
            raise ValueError("bug")

    sup.beacon = Broken()  # type: ignore
    for t in range(4):
        sup.tick(t)
    check(sup.healthy(4), "a few faults tolerated")
    sup.tick(5)
    check(not sup.healthy(5) and sup.faults == 5, "then the hardware watchdog may bite")


# -- file transfer ----------------------------------------------------------------------------

def b64(data) -> str:
    import binascii
    return binascii.b2a_base64(data).decode().strip()


def sha_hex(data) -> str:
    import binascii
    import hashlib
    return binascii.hexlify(hashlib.sha256(data).digest()).decode()


def refused(fn, body) -> str:
    try:
        fn(body)
    except CommandError as exc:
        return exc.reason
    return ""


def t_file_frames_golden():
    check(L.encode_frame(4, 0, L.FILE_INFO, b'{"path":"main.py"}')
          == unhex("00032004020816127b2270617468223a226d61696e2e7079227dfc8f00"), "file_info")
    check(L.encode_frame(0, 4, L.FILE_INFO | L.REPLY, b'{"err":"bad_path"}')
          == unhex("00022003048816127b22657272223a226261645f70617468227d631400"), "refusal")
    check(L.encode_frame(5, 0, L.RESET) == unhex("00032005020b0103e8be00"), "reset")
    check((L.FILE_INFO, L.FILE_WRITE, L.FILE_COMMIT, L.RESET) == (8, 9, 10, 11), "type numbers")
    # The largest write (longest path, a full chunk, a large offset) fits one frame.
    body = {"path": "firmware/" + "a" * 51 + ".mpy", "off": 9999999, "data": b64(bytes(L.FILE_CHUNK))}
    check(len(L.encode_body(body)) <= L.MAX_PAYLOAD, "chunk fits MAX_PAYLOAD")
    check(len(body["path"]) == 64)
    L.encode_frame(1, 0, L.FILE_WRITE, L.encode_body(body))


def t_file_paths():
    for ok in ("main.py", "firmware/link.mpy", "firmware/core/files.mpy", "firmware/manifest.json"):
        check(check_path(ok) == ok, ok)
    bad = ["", "/main.py", "boot.json", "boot.py", "firmware/../boot.json", "firmware/./x.mpy",
           "firmware//x.mpy", "firmware/.x.mpy", "firmware/x.mpy.part", "firmware/x y.mpy",
           "firmware/x.txt", "firmware/", "firmware/" + "a" * 60 + ".mpy", "../main.py", 7, None]
    for path in bad:
        try:
            check_path(path)
            check(False, "accepted %r" % (path,))
        except CommandError as exc:
            check(exc.reason == "bad_path", repr(path))


def t_file_write_commit_and_info():
    fs = MemoryFs({"main.py": b"old"})
    ft = FileTransfer(fs)
    check(ft.info({"path": "firmware/a.mpy"}) == {"size": None, "sha256": None})
    check(ft.info({"path": "main.py"})["sha256"] == sha_hex(b"old"))
    data = bytes(range(256)) * 3 + b"tail"
    off = 0
    while off < len(data):
        chunk = data[off:off + L.FILE_CHUNK]
        r = ft.write({"path": "firmware/a.mpy", "off": off, "data": b64(chunk)})
        off += len(chunk)
        check(r["size"] == off, "size after chunk")
    check(fs.size("firmware/a.mpy") == -1, "nothing live before commit")
    r = ft.commit({"path": "firmware/a.mpy", "sha256": sha_hex(data)})
    check(r == {"size": len(data), "sha256": sha_hex(data)}, "commit")
    check(fs.files["firmware/a.mpy"] == data and "firmware/a.mpy.part" not in fs.files)
    check(sha256_of(fs, "firmware/a.mpy") == sha_hex(data))


def t_file_bad_requests_refused():
    fs = MemoryFs({"main.py": b"old", "boot.json": b"{}"})
    ft = FileTransfer(fs)
    check(refused(ft.write, {"path": "../boot.json", "off": 0, "data": b64(b"x")}) == "bad_path")
    check(refused(ft.write, {"path": "main.py", "off": -1, "data": b64(b"x")}) == "bad_args")
    check(refused(ft.write, {"path": "main.py", "off": 0, "data": 5}) == "bad_args")
    check(refused(ft.write, {"path": "main.py", "off": 0, "data": "@@@"}) == "bad_args", "base64")
    check(refused(ft.commit, {"path": "main.py", "sha256": "ab"}) == "bad_args")
    check(refused(ft.commit, {"path": "main.py", "sha256": sha_hex(b"")}) == "no_upload")
    check(refused(ft.info, {"path": "/etc/passwd.py"}) == "bad_path")
    check(fs.files == {"main.py": b"old", "boot.json": b"{}"}, "nothing changed")


def t_file_wrong_hash_replaces_nothing():
    fs = MemoryFs({"main.py": b"old"})
    ft = FileTransfer(fs)
    ft.write({"path": "main.py", "off": 0, "data": b64(b"new main")})
    check(refused(ft.commit, {"path": "main.py", "sha256": sha_hex(b"other")}) == "hash")
    check(fs.files == {"main.py": b"old"}, "old file kept, part file removed")


def t_file_interrupted_transfer_keeps_old():
    fs = MemoryFs({"main.py": b"old"})
    ft = FileTransfer(fs)
    ft.write({"path": "main.py", "off": 0, "data": b64(b"A" * 256)})
    # The host went away; after a restart it resumes at a wrong offset: refused, then starts over.
    check(refused(ft.write, {"path": "main.py", "off": 512, "data": b64(b"B")}) == "offset")
    check(fs.files["main.py"] == b"old", "live file untouched by an unfinished transfer")
    ft.write({"path": "main.py", "off": 0, "data": b64(b"new")})
    check(ft.commit({"path": "main.py", "sha256": sha_hex(b"new")})["size"] == 3)
    check(fs.files == {"main.py": b"new"})
    # A flash that fills up mid-file: refused with "io", old file still there.
    fs.fail_after = 2
    check(refused(ft.write, {"path": "main.py", "off": 0, "data": b64(b"newer")}) == "io")
    check(fs.files["main.py"] == b"new")


def data_payload(off, chunk):
    return bytes([(off >> 24) & 255, (off >> 16) & 255, (off >> 8) & 255, off & 255]) + chunk


def t_file_data_frames_golden():
    # file_data, seq 6: offset 0 (4 bytes, big-endian) + b"abc", no JSON; its reply: 3 bytes held.
    check(L.encode_frame(6, 0, L.FILE_DATA, data_payload(0, b"abc"))
          == unhex("00032006020d020701010106616263dcaf00"), "file_data")
    check(L.encode_frame(0, 6, L.FILE_DATA | L.REPLY, data_payload(3, b""))
          == unhex("00022003068d020401010403a06900"), "file_data reply")
    check(L.encode_frame(5, 0, L.FILE_OPEN, b'{"path":"main.py"}')
          == unhex("00032005020c16127b2270617468223a226d61696e2e7079227dfe3f00"), "file_open")
    check((L.FILE_OPEN, L.FILE_DATA) == (12, 13), "type numbers")
    # A full chunk fits one frame with room to spare.
    check(4 + L.FILE_CHUNK <= L.MAX_PAYLOAD)


def t_file_open_data_commit():
    fs = MemoryFs({"main.py": b"old"})
    ft = FileTransfer(fs)
    check(refused(ft.data, data_payload(0, b"x")) == "no_upload", "no file open")
    check(ft.open({"path": "firmware/a.mpy"}) == {"chunk": L.FILE_CHUNK})
    data = bytes(range(256)) * 3 + b"tail"
    off = 0
    while off < len(data):
        chunk = data[off:off + L.FILE_CHUNK]
        reply = ft.data(memoryview(data_payload(off, chunk)))
        off += len(chunk)
        check(reply == data_payload(off, b""), "bytes held after a chunk")
    check(fs.size("firmware/a.mpy") == -1, "nothing live before commit")
    r = ft.commit({"path": "firmware/a.mpy", "sha256": sha_hex(data)})
    check(r == {"size": len(data), "sha256": sha_hex(data)}, "commit")
    check(fs.files["firmware/a.mpy"] == data and "firmware/a.mpy.part" not in fs.files)
    check(ft.upload is None, "the upload ends with its commit")


def t_file_data_refusals_leave_the_board_unchanged():
    fs = MemoryFs({"main.py": b"old"})
    ft = FileTransfer(fs)
    check(refused(ft.open, {"path": "../boot.json"}) == "bad_path" and ft.upload is None)
    ft.open({"path": "main.py"})
    ft.data(data_payload(0, b"new "))
    up = ft.upload
    before = (dict(fs.files), up.off)
    for payload, why in ((data_payload(4, bytes(L.FILE_CHUNK + 1)), "chunk"), (data_payload(4, b""), "chunk"),
                         (b"\x00\x00\x04", "chunk"), (b"", "chunk"), (data_payload(0, b"again"), "offset"),
                         (data_payload(99, b"gap"), "offset")):
        check(refused(ft.data, payload) == why, why)
        check((dict(fs.files), up.off) == before, "unchanged after " + why)
    ft.data(data_payload(4, b"main"))
    # The hash saw none of the refused chunks either (digest() ends a hash on MicroPython).
    check(ft.commit({"path": "main.py", "sha256": sha_hex(b"new main")})["size"] == 8)
    check(fs.files == {"main.py": b"new main"})
    ft.open({"path": "main.py"})
    ft.data(data_payload(0, b"newer"))
    check(refused(ft.commit, {"path": "main.py", "sha256": sha_hex(b"other")}) == "hash")
    check(fs.files == {"main.py": b"new main"}, "wrong hash: old file kept, part file removed")
    ft.open({"path": "main.py"})
    fs.fail_after = 2
    check(refused(ft.data, data_payload(0, b"newer")) == "io")
    check(fs.files["main.py"] == b"new main")


def t_file_data_payload_stays_in_the_receive_buffer():
    dec = L.FrameDecoder(L.MAX_ENCODED, L.V2, L.FILE_DATA)
    wire = L.encode_frame(7, 0, L.FILE_DATA, data_payload(0, b"chunk"))
    one = dec.feed(wire)
    check(isinstance(one[0].payload, memoryview) and bytes(one[0].payload) == data_payload(0, b"chunk"), "a view")
    # Another frame behind it in the same read overwrites the buffer: the payload is copied first.
    two = dec.feed(wire + L.encode_frame(0, 3, L.ACK))
    check(len(two) == 2 and bytes(two[0].payload) == data_payload(0, b"chunk"), "copied before overwritten")
    check(dec.feed(L.encode_frame(8, 0, L.FILE_INFO, b"{}"))[0].payload == b"{}", "other types are copies")


def t_supervisor_binary_transfer_drops_its_code():
    import sys

    from firmware.core.files import drop

    drop()  # this file imports core/files.py itself: start as a board does, with none of it loaded
    hal = HostHal(lambda: 0)
    sup = Supervisor(hal, 0)
    host = L.Link(seq0=60)
    data = bytes(range(200)) * 2
    host.send(L.FILE_OPEN, {"path": "firmware/y.mpy"})
    host.send(L.FILE_DATA, data_payload(0, data[:256]))
    host.send(L.FILE_DATA, data_payload(256, data[256:]))
    host.send(L.FILE_DATA, data_payload(256, data[256:]))  # a repeat: refused, nothing written twice
    host.send(L.FILE_COMMIT, {"path": "firmware/y.mpy", "sha256": sha_hex(data)})
    host.send(L.FILE_INFO, {"path": "firmware/y.mpy"})
    replies = []
    loaded = []
    for t in range(0, 3000, 10):
        sup.receive(host.poll(t), t)
        for f in host.receive(sup.tick(t), t):
            if f.mtype & L.REPLY:
                replies.append((f.mtype & 0x7F, bytes(f.payload)))
                loaded.append(("firmware.core.upload" in sys.modules, "firmware.core.files" in sys.modules,
                               "firmware.core.fileinfo" in sys.modules, "firmware.core.paths" in sys.modules,
                               "firmware.core.fileopen" in sys.modules))
            elif f.seq:
                host.respond(f)
    check([r[0] for r in replies] == [L.FILE_OPEN, L.FILE_DATA, L.FILE_DATA, L.FILE_DATA, L.FILE_COMMIT,
                                      L.FILE_INFO], "every command answered")
    check(replies[1][1] == data_payload(256, b"") and replies[2][1] == data_payload(400, b""), "sizes")
    check(replies[3][1] == b'{"err":"offset"}', replies[3][1])
    check(hal.files.files["firmware/y.mpy"] == data, "the file")
    check(b'"size":400' in replies[5][1], "info reads it back")
    # On the board, after file_open nothing of the file transfer is in the heap (the first chunk
    # loads core/upload.py); while chunks come only core/upload.py is (the commit of the streamed
    # file is its own); open and info never load core/files.py; after each command nothing else
    # of the file transfer is in the heap (CPython keeps its modules: no heap budget there).
    if sys.implementation.name == "micropython":
        none = (False, False, False, False, False)
        chunks = (True, False, False, False, False)
        check(loaded == [none, chunks, chunks, chunks, none, none], loaded)


def t_supervisor_drops_an_abandoned_upload():
    import sys

    hal = HostHal(lambda: 0)
    sup = Supervisor(hal, 0)
    host = L.Link(seq0=90)
    host.send(L.FILE_OPEN, {"path": "firmware/z.mpy"})
    t = 0
    while t < 1000:
        sup.receive(host.poll(t), t)
        host.receive(sup.tick(t), t)
        t += 10
    check(isinstance(sup.upload, str), "open: the part file's name until the first chunk")
    host.send(L.FILE_DATA, data_payload(0, b"abc"))
    while t < 2000:
        sup.receive(host.poll(t), t)
        host.receive(sup.tick(t), t)
        t += 10
    check(sup.upload is not None and "firmware.core.upload" in sys.modules, "a chunk came")
    # The host went away mid-file: after FILE_IDLE_MS the upload and its code are dropped.
    while t < 2000 + 61000:
        sup.tick(t)
        t += 100
    check(sup.upload is None, "dropped")
    check(sys.implementation.name != "micropython" or "firmware.core.upload" not in sys.modules, "code dropped")


def _board_exchange(sup, host, t):
    """Pump the board and the host link until the host has nothing in flight; the board's
    replies, as (type, payload bytes), and the time reached."""
    replies = []
    while True:
        sup.receive(host.poll(t), t)
        for f in host.receive(sup.tick(t), t):
            if f.mtype & L.REPLY:
                replies.append((f.mtype & 0x7F, bytes(f.payload)))
            elif f.seq:
                host.respond(f)
        t += 10
        if not host.pending():
            return replies, t


def t_supervisor_empty_file_and_stale_part():
    # file_open makes only the folders: the first chunk creates the part file (truncating one an
    # earlier transfer left behind) and the commit of an empty file creates it empty.
    import json

    fs = MemoryFs({"firmware/e.mpy.part": b"stale bytes", "firmware/s.mpy.part": b"stale and longer"})
    sup = Supervisor(HostHal(lambda: 0, files=fs), 0)
    host = L.Link(seq0=140)
    host.send(L.FILE_OPEN, {"path": "firmware/e.mpy"})
    host.send(L.FILE_COMMIT, {"path": "firmware/e.mpy", "sha256": sha_hex(b"")})
    host.send(L.FILE_OPEN, {"path": "firmware/s.mpy"})
    host.send(L.FILE_DATA, data_payload(0, b"new"))
    host.send(L.FILE_COMMIT, {"path": "firmware/s.mpy", "sha256": sha_hex(b"new")})
    replies, _t = _board_exchange(sup, host, 0)
    check(json.loads(replies[1][1]) == {"size": 0, "sha256": sha_hex(b"")}, replies)
    check(json.loads(replies[4][1]) == {"size": 3, "sha256": sha_hex(b"new")}, replies)
    check(fs.files["firmware/e.mpy"] == b"" and fs.files["firmware/s.mpy"] == b"new", "committed")
    check("firmware/e.mpy.part" not in fs.files and "firmware/s.mpy.part" not in fs.files, "no part left")
    # The reference commands (core/files.py) do the same.
    fs = MemoryFs({"firmware/e.mpy.part": b"stale"})
    ft = FileTransfer(fs)
    check(ft.open({"path": "firmware/e.mpy"}) == {"chunk": L.FILE_CHUNK})
    check(ft.commit({"path": "firmware/e.mpy", "sha256": sha_hex(b"")}) == {"size": 0, "sha256": sha_hex(b"")})
    check(fs.files == {"firmware/e.mpy": b""}, fs.files)


def t_supervisor_refuses_an_old_hosts_file_write():
    # Since 1.5.2 an old host's base64 file_write chunk is refused with unknown_type (it did not
    # fit the heap budget: docs/benchmarks.md): nothing is written, nothing of it is loaded,
    # and its commit finds no upload.
    import json
    import sys

    from firmware.core.files import drop

    drop()  # this file imports core/files.py itself: start as a board does, with none of it loaded
    fs = MemoryFs({"firmware/o.mpy": b"old"})
    sup = Supervisor(HostHal(lambda: 0, files=fs), 0)
    host = L.Link(seq0=160)
    data = bytes(range(256)) + b"tail"
    host.send(L.FILE_WRITE, {"path": "firmware/o.mpy", "off": 0, "data": b64(data[:256])})
    host.send(L.FILE_WRITE, {"path": "firmware/o.mpy", "off": 256, "data": b64(data[256:])})
    host.send(L.FILE_COMMIT, {"path": "firmware/o.mpy", "sha256": sha_hex(data)})
    replies, _t = _board_exchange(sup, host, 0)
    got = [json.loads(r[1]) for r in replies]
    check(got == [{"err": "unknown_type"}, {"err": "unknown_type"}, {"err": "no_upload"}], got)
    check(fs.files == {"firmware/o.mpy": b"old"}, "nothing written")
    check(sys.implementation.name != "micropython" or "firmware.core.files_b64" not in sys.modules, "not loaded")


def t_supervisor_streamed_commit_refusals():
    # The commit of a file that arrived by file_data (core/upload.py): a wrong hash replaces
    # nothing and ends the upload; a commit of another path or a malformed one takes the long
    # way (core/files.py) and is refused there; the right one after that still commits.
    import json
    import sys

    fs = MemoryFs({"firmware/w.mpy": b"old"})
    sup = Supervisor(HostHal(lambda: 0, files=fs), 0)
    host = L.Link(seq0=120)
    data = bytes(range(256)) + b"tail"
    t = 0

    def put(commit_body):
        host.send(L.FILE_OPEN, {"path": "firmware/w.mpy"})
        host.send(L.FILE_DATA, data_payload(0, data[:256]))
        host.send(L.FILE_DATA, data_payload(256, data[256:]))
        host.send(L.FILE_COMMIT, commit_body)
        replies, t2 = _board_exchange(sup, host, t)
        check(len(replies) == 4, replies)
        return json.loads(replies[3][1]), t2

    got, t = put({"path": "firmware/w.mpy", "sha256": sha_hex(b"other")})
    check(got == {"err": "hash"}, got)
    check(fs.files["firmware/w.mpy"] == b"old" and "firmware/w.mpy.part" not in fs.files, "nothing replaced")
    check(sup.upload is None, "the upload ends with a wrong hash")
    check(sys.implementation.name != "micropython" or "firmware.core.upload" not in sys.modules, "code dropped")
    got, t = put({"path": "firmware/v.mpy", "sha256": sha_hex(data)})
    check(got == {"err": "no_upload"}, got)  # another file: no part file of its own
    check(fs.files["firmware/w.mpy"] == b"old", "the open file is not committed under another name")
    got, t = put({"path": "firmware/w.mpy", "sha256": "ab"})
    check(got == {"err": "bad_args"}, got)
    check(sup.upload is not None, "a malformed commit leaves the upload open")
    host.send(L.FILE_COMMIT, {"path": "firmware/w.mpy", "sha256": sha_hex(data).upper()})
    replies, t = _board_exchange(sup, host, t)
    got = json.loads(replies[0][1])
    check(got == {"size": len(data), "sha256": sha_hex(data)}, got)
    check(fs.files["firmware/w.mpy"] == data and sup.upload is None, "committed")


def _b64(data):
    import binascii

    return binascii.b2a_base64(data, newline=False).decode()


def _put(ft, path, data):
    import binascii
    import hashlib

    ft.write({"path": path, "off": 0, "data": _b64(data)})
    return ft.commit({"path": path, "sha256": binascii.hexlify(hashlib.sha256(data).digest()).decode()})


def t_staged_set_switch_fallback_and_confirm():
    import binascii
    import hashlib

    fs = MemoryFs({"main.py": b"old"})
    ft = FileTransfer(fs)
    new = b"new link"
    sha = binascii.hexlify(hashlib.sha256(new).digest()).decode()
    check(bootsel.choose(fs) == "", "no pointer: the root set")
    _put(ft, "sets/2.0.0/firmware/link.mpy", new)
    _put(ft, "sets/2.0.0/set.txt", ("%s %d firmware/link.mpy\n" % (sha, len(new))).encode())
    try:
        _put(ft, "fwset.json", b'{"active": "sets/9.9.9"}')
        check(False, "switched to a set that is not there")
    except CommandError as exc:
        check(exc.reason == "no_upload", exc.reason)
    check(bootsel.load(fs) is None, "a refused switch writes no pointer")
    _put(ft, "fwset.json", b'{"active": "sets/2.0.0"}')
    check(bootsel.load(fs) == {"active": "sets/2.0.0", "good": "", "tries": 0})
    for _ in range(bootsel.LIMIT):
        check(bootsel.choose(fs) == "sets/2.0.0")
    check(bootsel.choose(fs) == "", "falls back after LIMIT failed boots")
    _put(ft, "fwset.json", b'{"active": "sets/2.0.0"}')
    check(bootsel.choose(fs) == "sets/2.0.0")
    check(bootsel.confirm(fs))
    for _ in range(2 * bootsel.LIMIT):
        check(bootsel.choose(fs) == "sets/2.0.0", "a confirmed set stays")
    fs.files["sets/2.0.0/firmware/link.mpy"] = b"cut"
    check(bootsel.choose(fs) == "", "an incomplete set is never booted")


def _staged_set(files):
    """A MemoryFs and its FileTransfer with the set sets/2.0.0 staged through the link: its
    ``files`` ({path: bytes}) and set.txt (as stage_over_link writes it)."""
    fs = MemoryFs({"main.py": b"old"})
    ft = FileTransfer(fs)
    listing = ""
    for rel in sorted(files):
        _put(ft, "sets/2.0.0/" + rel, files[rel])
        listing += "%s %d %s\n" % (sha_hex(files[rel]), len(files[rel]), rel)
    _put(ft, "sets/2.0.0/set.txt", listing.encode())
    return fs, ft


SET_FILES = {"main.py": b"new main", "firmware/link.mpy": b"new link" * 30, "firmware/e.mpy": b""}


def t_file_check_frames_golden():
    # file_check, seq 8, for the set sets/1.5.1; its reply: 3 entries checked; a refusal.
    check(L.encode_frame(8, 0, L.FILE_CHECK, b'{"set":"sets/1.5.1"}')
          == unhex("00032008020e18147b22736574223a22736574732f312e352e31227db36600"), "file_check")
    check(L.encode_frame(0, 8, L.FILE_CHECK | L.REPLY, b'{"checked":3}')
          == unhex("00022003088e110d7b22636865636b6564223a337d23f700"), "file_check reply")
    check(L.encode_frame(0, 8, L.FILE_CHECK | L.REPLY, b'{"err":"hash"}')
          == unhex("00022003088e120e7b22657272223a2268617368227d5ea500"), "refusal")
    check(L.FILE_CHECK == 14, "type number")


def t_file_check_one_entry_per_command_then_switch_without_hashing():
    import firmware.core.fileinfo as FI

    fs, ft = _staged_set(SET_FILES)
    for n in (1, 2, 3, 3):  # set.txt order; once every entry passed, nothing more to check
        check(ft.check({"set": "sets/2.0.0"}) == {"checked": n}, n)
    listing = fs.files["sets/2.0.0/set.txt"]
    check(ft.checked == ("sets/2.0.0", len(listing), 3), ft.checked)
    hashed = []
    real = FI.sha256_of

    def sha256_spy(fs2, path):
        hashed.append(path)
        return real(fs2, path)

    FI.sha256_of = sha256_spy
    try:
        _put(ft, "fwset.json", b'{"active": "sets/2.0.0"}')
    finally:
        FI.sha256_of = real
    check(hashed == [], "the switch hashes nothing when every entry passed")
    check(ft.checked is None, "a commit ends the record")
    check(bootsel.load(fs) == {"active": "sets/2.0.0", "good": "", "tries": 0})
    check(bootsel.choose(fs) == "sets/2.0.0")


def t_file_check_refusals_leave_the_board_unchanged():
    fs, ft = _staged_set(SET_FILES)
    ft.check({"set": "sets/2.0.0"})
    before = (dict(fs.files), ft.checked)
    for body, why in (({"set": "sets/9.9.9"}, "no_upload"), ({"set": "sets/../x"}, "bad_path"),
                      ({"set": "firmware"}, "bad_path"), ({"set": 7}, "bad_path"), ({}, "bad_path"),
                      ({"set": "sets/2.0.0/firmware"}, "bad_path"), ({"set": "sets/.."}, "bad_path"),
                      ({"set": "sets/"}, "bad_path"), ({"set": "sets/2.0.0\x00"}, "bad_path")):
        check(refused(ft.check, body) == why, "%r: %s" % (body, why))
        check((fs.files, ft.checked) == before, "unchanged after %r" % (body,))
    link = fs.files["sets/2.0.0/firmware/link.mpy"]
    fs.files["sets/2.0.0/firmware/link.mpy"] = b"X" + link[1:]
    check(refused(ft.check, {"set": "sets/2.0.0"}) == "hash", "a damaged file")
    check(ft.checked == before[1], "the record stays where it was")
    del fs.files["sets/2.0.0/firmware/link.mpy"]
    check(refused(ft.check, {"set": "sets/2.0.0"}) == "hash", "a missing file")
    check(ft.checked == before[1], "the record stays where it was")
    fs.files["sets/2.0.0/firmware/link.mpy"] = link
    check(ft.check({"set": "sets/2.0.0"}) == {"checked": 2}, "goes on once the file is right")
    ft.checked = None
    fs.files["sets/2.0.0/set.txt"] = b"not a set list\n"
    check(refused(ft.check, {"set": "sets/2.0.0"}) == "no_upload", "a malformed set list")
    fs.files["sets/2.0.0/set.txt"] = ("%s 8 ../boot.json\n" % sha_hex(b"x")).encode()
    check(refused(ft.check, {"set": "sets/2.0.0"}) == "bad_path", "a path outside the set")
    for rel in ("firmware/../../boot.json", "firmware//link.mpy", "/boot.json", ".hidden"):
        fs.files["sets/2.0.0/set.txt"] = ("%s 8 %s\n" % (sha_hex(b"x"), rel)).encode()
        check(refused(ft.check, {"set": "sets/2.0.0"}) == "bad_path", "outside the set: " + rel)
    for line in ("%s 8main.py" % sha_hex(b"x"), "%s  main.py" % sha_hex(b"x"), "%s x main.py" % sha_hex(b"x"),
                 "%s 8 main.py" % sha_hex(b"x")[1:], "%s 8 main.py" % sha_hex(b"x")):  # the last: no newline
        fs.files["sets/2.0.0/set.txt"] = line.encode()
        check(refused(ft.check, {"set": "sets/2.0.0"}) == "no_upload", "malformed: " + line)
    fs.files["sets/2.0.0/set.txt"] = ("%s 8 main.py\n" % sha_hex(b"x").upper()).encode()
    fs.files["sets/2.0.0/main.py"] = b"12345678"
    check(refused(ft.check, {"set": "sets/2.0.0"}) == "hash", "another file's digest")
    fs.files["sets/2.0.0/set.txt"] = ("%s 8 main" % sha_hex(b"x")).encode() + b"\xff.py\n"
    check(refused(ft.check, {"set": "sets/2.0.0"}) == "no_upload", "a path that is not UTF-8")
    check(ft.checked is None, "no record")


def t_file_changed_after_its_check_makes_the_switch_refuse():
    # Every entry passed, then a file of the set is replaced through the link: its commit ends
    # the record, so the switch hashes the set itself and refuses the changed file.
    for rel, data in (("firmware/link.mpy", b"evil lnk" * 30), ("set.txt", b"")):
        fs, ft = _staged_set(SET_FILES)
        for _ in SET_FILES:
            ft.check({"set": "sets/2.0.0"})
        if rel == "set.txt":  # set.txt itself changed: lists a file of other content
            data = ("%s %d main.py\n" % (sha_hex(b"other main"), 8)).encode()
        _put(ft, "sets/2.0.0/" + rel, data)
        check(ft.checked is None, "record ended by " + rel)
        try:
            _put(ft, "fwset.json", b'{"active": "sets/2.0.0"}')
            check(False, "switched to a set changed after its check: " + rel)
        except CommandError as exc:
            check(exc.reason == "hash", exc.reason)
        check(bootsel.load(fs) is None, "no pointer written")
    # A record of another set, or one short of the end, does not stand in for this one.
    fs, ft = _staged_set(SET_FILES)
    fs.files["sets/2.0.0/main.py"] = b"new mai!"
    for rec in (("sets/3.0.0", len(fs.files["sets/2.0.0/set.txt"]), 3), ("sets/2.0.0", 10, 1)):
        ft.checked = rec
        try:
            bootsel.switch(fs, "fwset.json.part", fs.write("fwset.json.part", 0, b'{"active": "sets/2.0.0"}'), rec)
            check(False, "switched on the record %r" % (rec,))
        except CommandError as exc:
            check(exc.reason == "hash", exc.reason)


def t_supervisor_file_check_then_switch():
    # Through the board's own dispatch (core/supervisor.py): one file_check per entry, each
    # dropping its code again, then the switch by file_open/file_data/file_commit of fwset.json.
    import json
    import sys

    fs, _ft = _staged_set(SET_FILES)
    fs.files["fwset.json"] = b'{"active": "sets/1.0.0", "good": "sets/1.0.0", "tries": 0}'
    from firmware.core.files import drop

    drop()  # as a board starts: none of the transfer code loaded
    sup = Supervisor(HostHal(lambda: 0, files=fs), 0)
    host = L.Link(seq0=200)
    for _ in range(len(SET_FILES) + 1):
        host.send(L.FILE_CHECK, {"set": "sets/2.0.0"})
    pointer = b'{"active": "sets/2.0.0"}'
    host.send(L.FILE_OPEN, {"path": "fwset.json"})
    host.send(L.FILE_DATA, data_payload(0, pointer))
    host.send(L.FILE_COMMIT, {"path": "fwset.json", "sha256": sha_hex(pointer)})
    replies, _t = _board_exchange(sup, host, 0)
    got = [json.loads(r[1]) for r in replies if r[0] == L.FILE_CHECK]
    check(got == [{"checked": 1}, {"checked": 2}, {"checked": 3}, {"checked": 3}], got)
    check(sys.implementation.name != "micropython" or "firmware.core.setcheck" not in sys.modules, "dropped")
    check(json.loads(replies[-1][1])["size"] == len(pointer), replies[-1])
    check(bootsel.load(fs) == {"active": "sets/2.0.0", "good": "sets/1.0.0", "tries": 0}, "switched")
    # Through the board's own commit (core/upload.py): a set file replaced after the checks
    # ends the record, so the switch hashes the set itself and refuses it.
    fs, _ft = _staged_set(SET_FILES)
    sup = Supervisor(HostHal(lambda: 0, files=fs), 0)
    host = L.Link(seq0=60)
    for _ in SET_FILES:
        host.send(L.FILE_CHECK, {"set": "sets/2.0.0"})
    evil = b"evil mai"
    host.send(L.FILE_OPEN, {"path": "sets/2.0.0/main.py"})
    host.send(L.FILE_DATA, data_payload(0, evil))
    host.send(L.FILE_COMMIT, {"path": "sets/2.0.0/main.py", "sha256": sha_hex(evil)})
    host.send(L.FILE_OPEN, {"path": "fwset.json"})
    host.send(L.FILE_DATA, data_payload(0, pointer))
    host.send(L.FILE_COMMIT, {"path": "fwset.json", "sha256": sha_hex(pointer)})
    replies, _t = _board_exchange(sup, host, 0)
    got = [json.loads(r[1]) for r in replies if r[0] != L.FILE_DATA]
    check(got[2] == {"checked": 3} and got[4]["size"] == len(evil), got)
    check(got[-1] == {"err": "hash"} and bootsel.load(fs) is None, got)


def t_set_switch_frames_golden():
    # set_switch (firmware 1.5.2; type 15, no name in firmware/link.py), seq 9, to sets/1.5.2;
    # its reply names the set; a refusal.
    check(L.encode_frame(9, 0, 15, b'{"set":"sets/1.5.2"}')
          == unhex("00032009020f18147b22736574223a22736574732f312e352e32227dca8900"), "set_switch")
    check(L.encode_frame(0, 9, 15 | L.REPLY, b'{"set":"sets/1.5.2"}')
          == unhex("00022003098f18147b22736574223a22736574732f312e352e32227d8e7400"), "set_switch reply")
    check(L.encode_frame(0, 9, 15 | L.REPLY, b'{"err":"unchecked"}')
          == unhex("00022003098f17137b22657272223a22756e636865636b6564227d0c3300"), "refusal")


def t_set_switch_only_after_the_whole_set_passed():
    # Refused (unchecked) without a record, with one short of the end, with another set's, or
    # after set.txt changed; each refusal leaves the flash and the record as they were.
    fs, ft = _staged_set(SET_FILES)
    fs.files["fwset.json"] = b'{"active": "sets/1.0.0", "good": "sets/1.0.0", "tries": 0}'
    size = len(fs.files["sets/2.0.0/set.txt"])
    for rec, body in ((None, {"set": "sets/2.0.0"}), (("sets/2.0.0", 10, 1), {"set": "sets/2.0.0"}),
                      (("sets/3.0.0", size, 3), {"set": "sets/2.0.0"}), (("sets/2.0.0", size, 3), {"set": "sets/3.0.0"}),
                      (("sets/2.0.0", size, 3), {"set": 7}), (("sets/2.0.0", size, 3), {}),
                      (("sets/2.0.0", size + 1, 3), {"set": "sets/2.0.0"})):
        ft.checked = rec
        before = dict(fs.files)
        check(refused(ft.switch, body) == "unchecked", "%r %r" % (rec, body))
        check(fs.files == before and ft.checked == rec, "unchanged after %r %r" % (rec, body))
    ft.checked = None
    for n in (1, 2, 3):
        ft.check({"set": "sets/2.0.0"})
    check(ft.switch({"set": "sets/2.0.0"}) == {"set": "sets/2.0.0"}, "switched")
    check(ft.checked is None, "a switch ends the record")
    check("fwset.json.part" not in fs.files, "no part file left")
    check(bootsel.load(fs) == {"active": "sets/2.0.0", "good": "sets/1.0.0", "tries": 0})
    check(bootsel.choose(fs) == "sets/2.0.0")
    check(refused(ft.switch, {"set": "sets/2.0.0"}) == "unchecked", "not twice on one record")


def t_supervisor_set_switch():
    # Through the board's own dispatch (core/supervisor.py -> core/fileopen.py ->
    # core/setswitch.py): refused before the checks, then one file_check per entry and
    # set_switch; its code leaves the heap again.
    import json
    import sys

    fs, _ft = _staged_set(SET_FILES)
    fs.files["fwset.json"] = b'{"active": "sets/1.0.0", "good": "sets/1.0.0", "tries": 0}'
    from firmware.core.files import drop

    drop()
    sup = Supervisor(HostHal(lambda: 0, files=fs), 0)
    host = L.Link(seq0=120)
    host.send(15, {"set": "sets/2.0.0"})
    for _ in SET_FILES:
        host.send(L.FILE_CHECK, {"set": "sets/2.0.0"})
    host.send(15, {"set": "sets/2.0.0"})
    replies, _t = _board_exchange(sup, host, 0)
    got = [json.loads(r[1]) for r in replies]
    check(got == [{"err": "unchecked"}, {"checked": 1}, {"checked": 2}, {"checked": 3}, {"set": "sets/2.0.0"}], got)
    check(sys.implementation.name != "micropython"
          or not any(m in sys.modules for m in ("firmware.core.setswitch", "firmware.core.fileopen")), "dropped")
    check(bootsel.load(fs) == {"active": "sets/2.0.0", "good": "sets/1.0.0", "tries": 0}, "switched")


def t_supervisor_file_transfer_and_reset():
    hal = HostHal(lambda: 0)
    sup = Supervisor(hal, 0)
    host = L.Link(seq0=40)
    host.send(L.FILE_OPEN, {"path": "firmware/x.mpy"})
    host.send(L.FILE_DATA, data_payload(0, b"xyz"))
    host.send(L.FILE_COMMIT, {"path": "firmware/x.mpy", "sha256": sha_hex(b"xyz")})
    host.send(L.FILE_INFO, {"path": "firmware/x.mpy"})
    host.send(L.FILE_INFO, {"path": "boot.json"})
    host.send(L.RESET)
    replies = []
    for t in range(0, 2000, 10):
        sup.receive(host.poll(t), t)
        for f in host.receive(sup.tick(t), t):
            if f.mtype & L.REPLY:
                mtype = f.mtype & 0x7F
                replies.append((mtype, bytes(f.payload) if mtype == L.FILE_DATA else f.body()))
            elif f.seq:
                host.respond(f)
    check(replies[0] == (L.FILE_OPEN, {"chunk": 256}), "open")
    check(replies[1] == (L.FILE_DATA, bytes([0, 0, 0, 3])), "data")
    check(replies[2][1]["sha256"] == sha_hex(b"xyz"), "commit")
    check(replies[3][1]["size"] == 3, "info")
    check(replies[4] == (L.FILE_INFO, {"err": "bad_path"}), "boot record is not reachable")
    check(replies[5] == (L.RESET, {"reset": True}) and sup.reset_requested, "reset asked")


def main() -> int:
    names = sorted(n for n in globals() if n.startswith("t_"))
    passed = 0
    failed = 0
    for name in names:
        try:
            globals()[name]()
            passed += 1
        except Exception as exc:
            failed += 1
            print("FAILED", name, repr(exc))
    print(("OK %d" if not failed else "FAIL %d") % (passed if not failed else failed))
    return failed


if __name__ == "__main__":
    main()
