"""PN532 frames and ISO 7816 APDUs: documented bytes, extended frames, property tests."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from device_drivers import iso7816, pn532
from foundation.errors import ProtocolError
from hardware_sim.card_reader import SocialSecurityCardSim

FIX = {k: bytes.fromhex(v) for k, v in json.loads((Path(__file__).parent / "fixtures/pn532.json").read_text()).items()
       if not k.startswith("_")}


def test_documented_frames():
    assert pn532.ACK == FIX["ack"] and pn532.NACK == FIX["nack"] and pn532.ERROR_FRAME == FIX["error"]
    assert pn532.command(pn532.GET_FIRMWARE_VERSION) == FIX["get_firmware_version"]
    assert pn532.command(pn532.SAM_CONFIGURATION, b"\x01\x14\x01") == FIX["sam_configuration_normal"]
    assert pn532.command(pn532.IN_LIST_PASSIVE_TARGET, b"\x01\x00") == FIX["in_list_passive_target_106a"]
    assert pn532.response(pn532.GET_FIRMWARE_VERSION, bytes([0x32, 1, 6, 7])) == FIX["firmware_answer_pn532_v1_6"]
    evs = pn532.Pn532Decoder().feed(FIX["ack"] + FIX["firmware_answer_pn532_v1_6"] + FIX["nack"] + FIX["error"])
    assert evs == [pn532.Ack(), pn532.Frame(0xD5, 0x03, bytes([0x32, 1, 6, 7])), pn532.Nack(), pn532.ErrorFrame()]


def test_extended_frames_round_trip_byte_by_byte():
    payload = bytes(range(256)) + b"\x01\x02"
    frame = pn532.response(pn532.IN_DATA_EXCHANGE, payload)
    assert frame[3:5] == b"\xff\xff"
    d = pn532.Pn532Decoder()
    evs = [e for b in frame for e in d.feed(bytes([b]))]
    assert evs == [pn532.Frame(0xD5, 0x41, payload)]


def test_damaged_frames_are_reported_and_decoding_resumes():
    good = pn532.response(pn532.GET_FIRMWARE_VERSION, b"\x32\x01\x06\x07")
    bad = bytearray(good)
    bad[-2] ^= 0x55  # data checksum
    evs = pn532.Pn532Decoder().feed(b"\x55\x55\x00" + bytes(bad) + good)
    assert isinstance(evs[0], pn532.FrameError) and evs[-1] == pn532.Frame(0xD5, 3, b"\x32\x01\x06\x07")


def test_targets_parse():
    data = b"\x01" + pn532.encode_target(1, b"\x00\x04", 0x20, b"\x08\xa1\xb2\xc3", bytes.fromhex("0578807002"))
    (t,) = pn532.parse_targets(data)
    assert t.iso_dep and t.uid.hex() == "08a1b2c3" and t.ats[0] == 5
    (u,) = pn532.parse_targets(b"\x01" + pn532.encode_target(1, b"\x00\x44", 0x08, bytes(7)))
    assert not u.iso_dep and len(u.uid) == 7
    with pytest.raises(ProtocolError):
        pn532.parse_targets(b"\x01\x01\x00")


def test_apdus_and_the_social_security_read_with_pin_seam():
    assert iso7816.select_by_name(iso7816.SSC_DDF1_AID).hex() == "00a404000f7378312e73682ec9e7bbe1b1a3d5cf"
    assert iso7816.read_record(7) == bytes.fromhex("00b2070400")
    assert iso7816.verify_pin("12345") == bytes.fromhex("00200000031234 5f")
    card = SocialSecurityCardSim(pin="246810")
    asked = []

    def pin():
        asked.append(1)
        return "246810"

    data = iso7816.read_social_security(card.apdu, pin)
    assert asked == [1] and data.name == "测试居民一" and data.sex == "男" and data.card_number == "TEST00001"
    assert data.birth_date == "19900307" and data.ss_number.endswith(data.ss_number[-4:])
    assert data.name not in repr(data) and data.ss_number not in repr(data)
    card.reset()
    with pytest.raises(iso7816.PinRequired):
        iso7816.read_social_security(card.apdu, lambda: None)
    card.reset()
    with pytest.raises(iso7816.CardStatusError, match="wrong PIN, 2 tries left"):
        iso7816.read_social_security(card.apdu, lambda: "000000")
    data.wipe()
    assert data.name == ""


@settings(max_examples=300, deadline=None)
@given(st.lists(st.binary(max_size=80), max_size=6))
def test_decoder_yields_events_only(chunks):
    d = pn532.Pn532Decoder()
    try:
        for c in chunks:
            for e in d.feed(c):
                assert isinstance(e, pn532.Ack | pn532.Nack | pn532.ErrorFrame | pn532.Frame | pn532.FrameError)
    except ProtocolError:
        pass


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=64))
def test_response_parsers_raise_only_protocol_errors(data):
    for f in (pn532.parse_targets, iso7816.parse_response, lambda d: iso7816.parse_record(d, 7)):
        try:
            f(data)
        except ProtocolError:
            pass
