"""PN532 card reader driver against the simulator over real pseudo-terminals."""

from __future__ import annotations

import pytest

from device_drivers.card_reader import CardReader, NoContactlessCard
from device_drivers.iso7816 import CardStatusError, PinBlocked, PinRequired, PinWrong, card_status_error
from foundation.backoff import Backoff
from foundation.errors import DeviceTimeout, NothingPresented
from tests.support.waiting import wait_until


def test_wakes_reads_firmware_and_uid(sim):
    proc, link = sim("card-reader")
    r = CardReader(str(link))
    assert r.firmware == (0x32, 1, 6, 7)
    proc.send({"cmd": "place_card", "kind": "uid", "uid": "04A2B3C4D5E680"})
    assert r.read_uid(timeout=1) == "04A2B3C4D5E680"
    proc.send({"cmd": "remove_card"})
    with pytest.raises(NoContactlessCard):
        r.read_uid(timeout=0.3)
    r.close()


def test_social_security_card_with_pin_from_the_backend_seam(sim):
    proc, link = sim("card-reader")
    proc.send({"cmd": "place_card", "kind": "social_security", "pin": "135790"})
    r = CardReader(str(link))
    data = r.read_social_security(pin_provider=lambda: "135790", timeout=1)
    assert data.name == "测试居民一" and data.card_number == "TEST00001" and data.birth_date == "19900307"
    with pytest.raises(PinRequired):
        r.read_social_security(pin_provider=lambda: None, timeout=1)
    proc.send({"cmd": "place_card", "kind": "uid"})
    with pytest.raises(Exception, match="not a social-security card"):
        r.read_social_security(lambda: "135790", timeout=1)


def test_wrong_pins_count_down_then_the_card_blocks_as_typed_errors(sim):
    proc, link = sim("card-reader")
    proc.send({"cmd": "place_card", "kind": "social_security", "pin": "135790"})
    r = CardReader(str(link))
    tries = []
    for _ in range(2):
        with pytest.raises(PinWrong) as wrong:
            r.read_social_security(pin_provider=lambda: "000000", timeout=1)
        tries.append(wrong.value.tries_left)
    assert tries == [2, 1]
    with pytest.raises(PinBlocked):  # the last try: the card answers 6983 from now on
        r.read_social_security(pin_provider=lambda: "000000", timeout=1)
    with pytest.raises(PinBlocked):
        r.read_social_security(pin_provider=lambda: "135790", timeout=1)
    r.close()


def test_status_words_map_to_one_error_type_each():
    assert type(card_status_error(0x63C2, "verify")) is PinWrong and card_status_error(0x63C2, "v").tries_left == 2
    assert type(card_status_error(0x63C0, "verify")) is PinBlocked
    assert type(card_status_error(0x6983, "verify")) is PinBlocked
    assert type(card_status_error(0x6A82, "select")) is CardStatusError
    assert issubclass(NoContactlessCard, NothingPresented)


def test_unplug_during_a_read_reconnects_and_next_read_works(sim):
    proc, link = sim("card-reader")
    proc.send({"cmd": "place_card", "kind": "social_security", "pin_required": False})
    r = CardReader(str(link), backoff=Backoff(base=0.02, cap=0.2))
    proc.send({"cmd": "unplug"})
    with pytest.raises(Exception, match="connected|unknown"):
        r.read_social_security(timeout=0.3)
    proc.send({"cmd": "replug"})
    # Not wait_connected: the link may not have seen the unplug yet (then it returns at once).
    wait_until(lambda: r.link.reconnects, 15, "the reader's link reconnected")
    assert r.read_social_security(timeout=2).name == "测试居民一"


def test_garbled_answers_are_recovered_with_nack(sim):
    proc, link = sim("card-reader")
    proc.send({"cmd": "place_card", "kind": "social_security", "pin_required": False})
    r = CardReader(str(link), answer_timeout=0.2)
    proc.send({"cmd": "garble", "rate": 0.01})
    names = []
    for _ in range(3):
        try:
            names.append(r.read_social_security(timeout=1).name)
        except Exception as exc:  # noqa: BLE001 - a damaged ACK may fail one attempt; the next must work
            names.append(type(exc).__name__)
    proc.send({"cmd": "garble", "rate": 0})
    assert r.read_social_security(timeout=1).name == "测试居民一"
    assert r.counters["communication_errors"] > 0


def test_a_reader_that_does_not_wake_lets_go_of_its_port(sim):
    proc, link = sim("card-reader")
    proc.send({"cmd": "mute"})
    with pytest.raises(DeviceTimeout):
        CardReader(str(link), ack_timeout=0.05, answer_timeout=0.1)
    proc.send({"cmd": "mute", "on": False})
    r = CardReader(str(link))  # alone on the port: no leaked reader thread takes its answers
    assert r.firmware == (0x32, 1, 6, 7)
    proc.send({"cmd": "place_card", "kind": "uid", "uid": "04A2B3C4D5E680"})
    for _ in range(5):
        assert r.read_uid(timeout=1) == "04A2B3C4D5E680"
    r.close()
