"""SAM_V codec: documented frames, the three card layouts, and property tests over the decoders."""

from __future__ import annotations

import json
from pathlib import Path

from hypothesis import given, settings
from hypothesis import strategies as st

from device_drivers import samv
from foundation.errors import ProtocolError
from hardware_sim import identities

FIX = {k: bytes.fromhex(v) for k, v in json.loads((Path(__file__).parent / "fixtures/samv.json").read_text()).items()
       if not k.startswith("_")}


def test_commands_match_documented_frames():
    assert samv.command(samv.SAM_STATUS) == FIX["sam_status"]
    assert samv.command(samv.FIND_CARD) == FIX["find_card"]
    assert samv.command(samv.SELECT_CARD) == FIX["select_card"]
    assert samv.command(samv.READ_TEXT_PHOTO) == FIX["read_text_photo"]
    assert samv.response(0x9F, bytes(4)) == FIX["answer_find_ok"]
    assert samv.response(0x90, bytes(8)) == FIX["answer_select_ok"]


def test_documented_answers_decode():
    evs = samv.SamvDecoder().feed(FIX["answer_find_ok"] + FIX["answer_find_none"] + FIX["answer_sam_ok"])
    assert [e.status for e in evs] == [0x9F, 0x80, 0x90]
    host = samv.SamvDecoder(from_host=True).feed(FIX["read_text_photo"])
    assert host == [samv.Command(0x30, 0x01, b"")]


def test_noise_and_bad_checksums_resynchronise():
    bad = bytearray(FIX["answer_find_ok"])
    bad[-1] ^= 0xFF
    evs = samv.SamvDecoder().feed(b"\x00\xaa\x13" + bytes(bad) + FIX["answer_select_ok"])
    responses = [e for e in evs if isinstance(e, samv.Response)]
    assert [r.status for r in responses] == [0x90]
    assert any(isinstance(e, samv.FrameError) and e.reason == "bad checksum" for e in evs)


def test_status_codes_become_clear_errors():
    for code, words in [(0x80, "no card"), (0x81, "selecting"), (0x41, "reading the card failed"),
                        (0x10, "checksum"), (0x11, "length"), (0x21, "unknown command"), (0x60, "SAM")]:
        err = samv.SamvStatusError(code, "x")
        assert words in str(err) and err.status == code


def test_resident_card_text_decodes_and_masks():
    text, photo = identities.card("resident-1")
    ident = samv.decode_text(text, photo)
    assert ident.card_type == "resident_id" and ident.name == "测试居民一" and ident.sex == "男"
    assert ident.nation == "汉" and ident.birth == "19900307" and ident.id_number[6:14] == ident.birth
    assert identities.is_valid_number(ident.id_number)
    assert ident.address.startswith("广东省广州市") and ident.valid_until == "20400101"
    assert bytes(ident.photo_wlt).startswith(b"FICTITIOUS-WLT")
    r = repr(ident)
    assert "测试居民一" not in r and ident.id_number not in r and ident.id_number[-4:] in r
    ident.wipe()
    assert ident.wiped and ident.name == "" and ident.photo_wlt == bytearray()


def test_hk_macao_taiwan_permit_and_foreigner_card_layouts():
    j = samv.decode_text(identities.card("hmt-1")[0])
    assert j.card_type == "hk_macao_taiwan_permit" and j.pass_number == "H00000000" and j.issue_count == "01"
    assert j.id_number.startswith("81") and identities.is_valid_number(j.id_number)
    y = samv.decode_text(identities.card("foreigner-1")[0])
    assert y.card_type == "foreign_permanent_2023" and y.english_name == "TEST, RESIDENT ONE"
    assert y.id_number.startswith("9") and identities.is_valid_number(y.id_number)
    assert y.nationality == "USA" and y.sex == "女" and y.name == "测试外籍居民"


def test_gb11643_check_digit_known_example():
    # The worked example of GB 11643-1999: 11010519491231002X.
    assert identities.check_digit("11010519491231002") == "X"


@settings(max_examples=300, deadline=None)
@given(st.lists(st.binary(max_size=80), max_size=6), st.booleans())
def test_decoder_yields_events_or_protocol_errors_only(chunks, from_host):
    d = samv.SamvDecoder(from_host=from_host)
    try:
        for c in chunks:
            for e in d.feed(c):
                assert isinstance(e, samv.Response | samv.Command | samv.FrameError)
    except ProtocolError:
        pass


@settings(max_examples=200, deadline=None)
@given(st.binary(max_size=300))
def test_text_and_answer_decoding_yield_identity_or_protocol_error(data):
    try:
        text, photo, _ = samv.split_read_answer(data)
        samv.decode_text(text, photo)
    except ProtocolError:
        pass
    try:
        samv.decode_text(data[:256].ljust(256, b"\x00"))
    except ProtocolError:
        pass
