"""Scanner codec (golden lines, property test) and driver against the simulator."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from device_drivers.scanner import BarcodeScanner
from device_drivers.scanner_codec import Debouncer, Scan, ScanError, ScannerDecoder
from foundation.errors import ProtocolError
from tests.support.waiting import wait_until


def test_lines_with_aim_prefix_suffixes_and_encodings():
    d = ScannerDecoder(suffix="CR", aim_prefix=True, max_length=32)
    evs = d.feed(b"]Q1https://x.invalid/1\r]C0ABC-123\r\n]Q1" + "健康码".encode("gb18030") + b"\r")
    assert evs[0] == Scan("https://x.invalid/1", "QR", b"]Q1https://x.invalid/1")
    assert evs[1].data == "ABC-123" and evs[1].symbology == "Code128"
    assert evs[2].data == "健康码"  # not UTF-8: decoded as GB18030
    crlf = ScannerDecoder(suffix="CRLF", aim_prefix=False)
    assert crlf.feed(b"12345\r") == [] and crlf.feed(b"\n") == [Scan("12345", None, b"12345")]


def test_length_bound_and_garbage():
    d = ScannerDecoder(suffix="CR", aim_prefix=False, max_length=8)
    evs = d.feed(b"0123456789ABCDEF0123\rOK\r")
    assert isinstance(evs[0], ScanError) and evs[0].reason == "too long" and evs[1].data == "OK"
    assert d.feed(b"\xff\xfe\xff\r") == [ScanError("undecodable", 3)]


def test_debounce_drops_repeats_in_the_window():
    db = Debouncer(1.0)
    assert db.accept("A", 0.0) and not db.accept("A", 0.5) and db.accept("B", 0.6) and db.accept("A", 0.7)
    assert db.accept("A", 2.0)


@settings(max_examples=300, deadline=None)
@given(st.lists(st.binary(max_size=64), max_size=8), st.sampled_from(["CR", "CRLF"]), st.booleans())
def test_decoder_yields_scans_or_errors_only(chunks, suffix, aim):
    d = ScannerDecoder(suffix=suffix, aim_prefix=aim, max_length=40)
    try:
        for c in chunks:
            for e in d.feed(c):
                assert isinstance(e, Scan | ScanError)
    except ProtocolError:
        pass


def test_driver_delivers_debounced_scans_and_trigger_mode(sim):
    proc, link = sim("scanner", baud=9600)
    got = []
    s = BarcodeScanner(str(link), 9600, on_scan=got.append)
    proc.send({"cmd": "scan", "data": "社区服务预约 A-001", "repeat": 3})
    first = s.next_scan(2)
    assert first.data == "社区服务预约 A-001" and first.symbology == "QR"
    assert s.next_scan(0.3) is None and s.counters["repeats_dropped"] == 2 and got == [first]
    proc.send({"cmd": "config", "trigger_mode": True})
    assert proc.send({"cmd": "scan", "data": "HELD", "symbology": "C0"})["held"]
    assert s.next_scan(0.2) is None
    s.trigger(True)
    held = s.next_scan(2)
    assert held.data == "HELD" and held.symbology == "Code128"
    s.close()


def test_scanner_survives_unplug_and_replug(sim):
    proc, link = sim("scanner", baud=9600)
    s = BarcodeScanner(str(link), 9600, profile="crlf-noaim")
    proc.send({"cmd": "config", "suffix": "CRLF", "aim": False})
    proc.send({"cmd": "unplug"})
    proc.send({"cmd": "replug"})
    # Not wait_connected: the link may not have seen the unplug yet (then it returns at once).
    wait_until(lambda: s.link.reconnects, 15, "the scanner's link reconnected")  # asserted below: it must come
    proc.send({"cmd": "scan", "data": "AFTER-REPLUG"})
    assert s.next_scan(2).data == "AFTER-REPLUG"
    assert s.link.reconnects == 1


def test_garbled_lines_do_not_wedge_the_scanner(sim):
    proc, link = sim("scanner", baud=115200)
    s = BarcodeScanner(str(link), 115200, profile="crlf-noaim")
    proc.send({"cmd": "config", "suffix": "CRLF", "aim": False})
    proc.send({"cmd": "garble", "rate": 0.05})
    proc.send({"cmd": "scan", "data": "NOISY", "repeat": 30, "numbered": True})
    # every noisy byte went out while garbling was on
    wait_until(lambda: not proc.send({"cmd": "pending"})["bytes"], 15, "the simulator to send the noisy scans")
    proc.send({"cmd": "garble", "rate": 0})
    proc.send({"cmd": "scan", "data": "FLUSH"})  # ends a noisy line whose suffix was garbled
    proc.send({"cmd": "scan", "data": "CLEAN-CODE"})
    seen = []
    while (scan := s.next_scan(1.0)) is not None:
        seen.append(scan.data)
        if scan.data == "CLEAN-CODE":
            break
    assert seen[-1] == "CLEAN-CODE"
    assert s.counters["scans"] + s.counters["bad_scans"] >= 2
