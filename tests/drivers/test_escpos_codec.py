"""ESC/POS codec: golden frames from the command reference, and property tests over both decoders."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from device_drivers import escpos
from foundation.errors import LocalProtocolError, ProtocolError

FIX = {k: bytes.fromhex(v) for k, v in json.loads((Path(__file__).parent / "fixtures/escpos.json").read_text()).items()
       if not k.startswith("_")}


def test_builders_match_documented_bytes():
    assert escpos.INIT == FIX["init"]
    assert escpos.CHINESE_ON == FIX["chinese_on"] and escpos.CHINESE_OFF == FIX["chinese_off"]
    assert escpos.status_request(4) == FIX["status_paper"]
    assert escpos.asb_enable() == FIX["asb_enable_online_error_paper"]
    assert escpos.cut(partial=True, feed_lines=3) == FIX["cut_partial_feed3"]
    assert escpos.cut(feed_lines=0) == FIX["cut_full_feed0"]
    assert escpos.align("center") == FIX["align_center"]
    assert escpos.bold(True) == FIX["bold_on"]
    assert escpos.size(2, 2) == FIX["double_size"]
    assert escpos.qr("abc", module=6, ecc="M") == (FIX["qr_model2"] + FIX["qr_module6"] + FIX["qr_ecc_m"]
                                                 + FIX["qr_store_abc"] + FIX["qr_print"])
    assert escpos.barcode_code128("abc").endswith(FIX["code128_abc"])
    assert escpos.raster(1, b"\xff\x81") == FIX["raster_8x2"]
    assert escpos.text("中") == FIX["gb18030_zhong"]


def test_rare_characters_follow_the_profile_charset():
    rare = "张𠮷"  # U+20BB7 is outside GB2312 and GBK: four-byte GB18030 only
    data, warn = escpos.encode_chinese(rare, "gb18030")
    assert data.endswith(FIX["gb18030_4byte_u20bb7"]) and warn == []
    data, warn = escpos.encode_chinese(rare, "gbk")
    assert data == "张".encode("gbk") + escpos.REPLACEMENT.encode("gb2312")
    assert len(warn) == 1 and "U+20BB7" in warn[0]
    data, warn = escpos.encode_chinese("喆", "gb2312")  # in GBK, not in GB2312
    assert warn and data == escpos.REPLACEMENT.encode("gb2312")


def test_parser_splits_a_job_into_events_even_byte_by_byte():
    job = (escpos.INIT + escpos.CHINESE_ON + escpos.align("center") + escpos.bold(True) + "标题\n".encode("gb18030")
           + escpos.qr("https://example.invalid/x") + escpos.barcode_code128("AB12")
           + escpos.raster(1, b"\xff\x00") + escpos.asb_enable() + escpos.status_request(2) + escpos.cut(partial=True))
    whole = escpos.EscPosParser().feed(job)
    p = escpos.EscPosParser()
    pieces = [ev for b in job for ev in p.feed(bytes([b]))]
    kinds = [type(e).__name__ for e in whole]
    assert kinds[:5] == ["Init", "ChineseMode", "Align", "Bold", "Text"]
    assert escpos.QrStore(b"https://example.invalid/x") in whole and escpos.QrPrint() in whole
    assert escpos.Barcode(73, b"AB12") in whole
    assert escpos.Raster(1, 2, b"\xff\x00") in whole
    assert escpos.AsbEnable(0x0E) in whole and escpos.StatusRequest(2) in whole
    assert whole[-1] == escpos.Cut(partial=True)
    # Text may arrive split, everything else is identical.
    assert [e for e in pieces if not isinstance(e, escpos.Text)] == [e for e in whole if not isinstance(e, escpos.Text)]
    assert b"".join(e.data for e in pieces if isinstance(e, escpos.Text)) == "标题\n".encode("gb18030")


def test_status_reader_classifies_replies_asb_and_flow_control():
    asb = escpos.asb_block(cover_open=True, paper_end=True, offline=True)
    evs = escpos.StatusReader().feed(b"\x12" + asb + b"\x13\x11" + b"\x1e" + b"\x7f")
    assert evs[0] == escpos.StatusByte(0x12)
    assert isinstance(evs[1], escpos.AsbStatus) and evs[1].cover_open and evs[1].paper_end and evs[1].offline
    assert evs[2:4] == [escpos.FlowControl(False), escpos.FlowControl(True)]
    assert evs[4] == escpos.StatusByte(0x1E)
    assert isinstance(evs[5], escpos.Garbage)


def test_status_bits():
    assert escpos.decode_status(4, 0x7E) == {"paper_near_end": True, "paper_end": True}
    assert escpos.decode_status(2, 0x16)["cover_open"] is True
    assert escpos.decode_status(1, 0x12)["offline"] is False


@pytest.mark.parametrize("call", [lambda: escpos.align("middle"), lambda: escpos.size(9, 1),
                                  lambda: escpos.qr(""), lambda: escpos.barcode_code128("中"),
                                  lambda: escpos.status_request(5), lambda: escpos.raster(2, b"\x00")])
def test_builders_refuse_what_the_protocol_does_not_allow(call):
    with pytest.raises(LocalProtocolError):
        call()


@settings(max_examples=300, deadline=None)
@given(st.lists(st.binary(max_size=64), max_size=8))
def test_parser_never_raises_anything_but_protocol_errors(chunks):
    p = escpos.EscPosParser()
    try:
        for c in chunks:
            p.feed(c)
    except ProtocolError:
        pass


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=256))
def test_status_reader_accounts_for_every_byte(data):
    evs = escpos.StatusReader().feed(data)
    for e in evs:
        assert isinstance(e, escpos.StatusByte | escpos.AsbStatus | escpos.FlowControl | escpos.Garbage)
