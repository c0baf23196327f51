"""ID card reader driver against the simulator over real pseudo-terminals, faults included."""

from __future__ import annotations

import threading
import time

import pytest

from device_drivers.id_reader import IdCardReader, NoCard
from device_drivers.samv import SamvStatusError
from foundation.backoff import Backoff
from foundation.errors import DeviceTimeout, RemoteProtocolError
from tests.support.waiting import wait_until


def test_reads_all_three_card_types(sim):
    proc, link = sim("id-reader")
    r = IdCardReader(str(link))
    r.sam_status()
    for profile, kind in [("resident-1", "resident_id"), ("hmt-1", "hk_macao_taiwan_permit"),
                          ("foreigner-1", "foreign_permanent_2023")]:
        proc.send({"cmd": "place_card", "profile": profile})
        ident = r.read_card(timeout=2)
        assert ident.card_type == kind and ident.name.startswith("测试")
        assert len(ident.photo_wlt) == 1024
    r.wipe()
    assert ident.wiped
    assert r.counters["cards_read"] == 3
    r.close()


def test_no_card_times_out_clearly(sim):
    _, link = sim("id-reader")
    r = IdCardReader(str(link))
    t0 = time.monotonic()
    with pytest.raises(NoCard, match="no ID card"):
        r.read_card(timeout=0.4)
    assert time.monotonic() - t0 < 1.0


def test_card_placed_while_polling_is_read(sim):
    proc, link = sim("id-reader")
    r = IdCardReader(str(link))
    threading.Timer(0.3, lambda: proc.send({"cmd": "place_card"})).start()
    assert r.read_card(timeout=3).name == "测试居民一"


def test_sam_failure_is_a_clear_error(sim):
    proc, link = sim("id-reader")
    proc.send({"cmd": "sam", "ok": False})
    r = IdCardReader(str(link))
    with pytest.raises(SamvStatusError, match="SAM self-test failed"):
        r.sam_status()


def test_silent_reader_is_a_timeout_not_no_card(sim):
    proc, link = sim("id-reader")
    proc.send({"cmd": "mute"})
    r = IdCardReader(str(link), answer_timeout=0.1)
    with pytest.raises(Exception) as info:
        r.read_card(timeout=0.5)
    assert not isinstance(info.value, NoCard) and "state unknown" in str(info.value)


def test_unplug_during_a_read_reconnects_and_next_read_works(sim):
    proc, link = sim("id-reader")
    proc.send({"cmd": "place_card"})
    proc.send({"cmd": "card_latency", "seconds": 0.3})
    r = IdCardReader(str(link), backoff=Backoff(base=0.02, cap=0.2))
    errors = []

    def read():
        try:
            r.read_card(timeout=0.5)
        except Exception as exc:  # noqa: BLE001 - we want to see what it was
            errors.append(exc)

    before = proc.send({"cmd": "status"})["frames"]
    t = threading.Thread(target=read)
    t.start()
    wait_until(lambda: proc.send({"cmd": "status"})["frames"] != before, 15,
               "the read command to reach the simulator")
    proc.send({"cmd": "unplug"})  # the answer is still held back by the card latency
    t.join()
    assert errors and ("unknown" in str(errors[0]) or "connected" in str(errors[0]))
    proc.send({"cmd": "replug"})
    proc.send({"cmd": "card_latency", "seconds": 0.02})
    # Not wait_connected: the link may not have seen the unplug yet (then it returns at once). The
    # reconnect after it (backoff up to 2 s) is asserted below; wait for it first.
    wait_until(lambda: r.link.reconnects == 1, 15, "the link reopened the replugged port")
    assert r.read_card(timeout=3).name == "测试居民一"
    assert r.link.reconnects == 1


def test_garbled_answers_are_resynchronised(sim):
    proc, link = sim("id-reader")
    proc.send({"cmd": "place_card", "profile": "resident-2"})
    proc.send({"cmd": "garble", "rate": 0.001})
    r = IdCardReader(str(link), answer_timeout=0.2)
    # About 3 in 4 answers arrive damaged and 3 in 100 pass the check byte damaged: the read goes on
    # until two answers agree (2-3 s as a rule, 17 s the slowest of 30; the bound is generous).
    ident = r.read_card(timeout=40)
    assert ident.name == "测试居民二" and ident.nation == "土家"


def test_slow_reader_times_out_then_recovers_without_mixing_answers(sim):
    proc, link = sim("id-reader")
    proc.send({"cmd": "place_card"})
    proc.send({"cmd": "slow", "seconds": 0.3})
    r = IdCardReader(str(link), answer_timeout=0.1)
    with pytest.raises(Exception, match="state unknown"):
        r.read_card(timeout=0.3)
    proc.send({"cmd": "slow", "seconds": 0.0})
    ident = r.read_card(timeout=3)
    assert ident.name == "测试居民一" and ident.card_type == "resident_id"


def reads_sent(proc) -> int:
    return proc.send({"cmd": "status"})["frames"] // 3  # find, select, read per attempt


def test_a_read_the_check_byte_cannot_fault_is_caught_by_a_second_read(sim):
    proc, link = sim("id-reader")
    proc.send({"cmd": "place_card", "profile": "resident-2"})
    proc.send({"cmd": "hidden_damage", "reads": 1})
    r = IdCardReader(str(link))
    ident = r.read_card(timeout=3)
    assert ident.name == "测试居民二"
    assert reads_sent(proc) == 3  # damaged, then two that agree
    assert r.counters["communication_errors"] == 1 and r.counters["cards_read"] == 1


def test_a_clean_line_reads_once_after_one_confirmed_read_and_twice_again_after_damage(sim):
    proc, link = sim("id-reader")
    proc.send({"cmd": "place_card", "profile": "resident-1"})
    r = IdCardReader(str(link), trust_after=60)
    r.read_card(timeout=3).wipe()
    assert reads_sent(proc) == 2  # nothing proven yet: confirmed
    r.read_card(timeout=3).wipe()
    assert reads_sent(proc) == 3  # a clean line since: one read stands
    # A damaged frame takes the trust away.
    proc.send({"cmd": "garble", "rate": 0.5})
    with pytest.raises((RemoteProtocolError, DeviceTimeout)):
        r.read_card(timeout=0.3)
    proc.send({"cmd": "garble", "rate": 0.0})
    assert r.counters["communication_errors"] > 0
    proc.send({"cmd": "hidden_damage", "reads": 1})
    assert r.read_card(timeout=3).name == "测试居民一"  # one read standing alone would be the damaged one


def test_the_simulator_refuses_a_hidden_damage_count_that_is_not_a_count(sim):
    proc, _ = sim("id-reader")
    for bad in (-1, "2", True, 1.5):
        answer = proc.send({"cmd": "hidden_damage", "reads": bad})
        assert answer["ok"] is False and "hidden_damage" in answer["error"], answer
