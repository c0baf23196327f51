"""The kiosk's device layer over a real pseudo-terminal: a session's end cancels its card read, a
late reset of the previous session never cancels (or wipes under) the next resident's read, and a
card left on a reader by the previous resident is never read for the next one."""

from __future__ import annotations

import threading

import pytest

from kiosk_ui.devices import Devices, ReadCancelled
from tests.support.waiting import wait_until


def _read_in_thread(dev: Devices, session: int, kind: str = "id_card",
                    on_left_card=None) -> tuple[threading.Thread, dict]:
    box: dict = {}

    def run():
        try:
            box["ident"] = dev.read_identity(kind, 10, session=session, on_left_card=on_left_card)
        except Exception as exc:  # noqa: BLE001 - the test looks at what was raised
            box["error"] = exc
    t = threading.Thread(target=run, daemon=True)
    t.start()
    return t, box


def test_session_end_cancels_only_its_own_read(sim, tmp_path):
    proc, link = sim("id-reader")
    dev = Devices({"id_reader": str(link)}, data_dir=tmp_path / "devices")
    try:
        dev.start()
        before = proc.send({"cmd": "status"})["frames"]
        old, old_box = _read_in_thread(dev, dev.session)
        wait_until(lambda: proc.send({"cmd": "status"})["frames"] != before, 15,  # the old read asks the reader
                   "the read to reach the reader")
        dev.cancel()  # the previous resident's session ends (UI thread)...
        new, new_box = _read_in_thread(dev, dev.session)  # ...the next resident starts at once...
        wiper = threading.Thread(target=dev.wipe)  # ...while the reset's wipe is still to come
        wiper.start()
        old.join(5)
        assert isinstance(old_box.get("error"), ReadCancelled)
        wiper.join(5)
        proc.send({"cmd": "place_card", "profile": "resident-1"})
        new.join(10)
        assert "error" not in new_box, new_box
        assert new_box["ident"].masked_name().endswith("*")
        # A read of a session that has ended is refused at once.
        stale = dev.session - 1
        with pytest.raises(ReadCancelled):
            dev.read_identity("id_card", 1, session=stale)
    finally:
        dev.close()


def _end_resident_session(dev: Devices) -> None:
    """What the app runs when a session ends (reset_devices, then watch_cards)."""
    dev.cancel()
    dev.new_resident()
    dev.wipe()


@pytest.mark.parametrize(("device", "reader", "kind", "first", "second"), [
    ("id-reader", "id_reader", "id_card", {"cmd": "place_card", "profile": "resident-1"},
     {"cmd": "place_card", "profile": "resident-2"}),
    ("card-reader", "card_reader", "ss_card", {"cmd": "place_card", "kind": "social_security", "pin_required": False},
     {"cmd": "place_card", "kind": "social_security", "pin_required": False}),
])
def test_a_card_left_behind_is_not_read_for_the_next_resident(sim, tmp_path, device, reader, kind, first, second):
    proc, link = sim(device)
    dev = Devices({reader: str(link)}, data_dir=tmp_path / "devices")
    try:
        dev.start()
        assert dev.cards_present() == set()  # the app looks at start-up and after every session
        t, box = _read_in_thread(dev, dev.session, kind)
        proc.send(first)
        t.join(10)
        assert "ident" in box, box
        mine = box["ident"]
        _end_resident_session(dev)  # the resident walks away; the card stays
        assert dev.cards_present() == {reader}
        told = threading.Event()
        t, box = _read_in_thread(dev, dev.session, kind, on_left_card=told.set)
        assert told.wait(10), "the next resident was not told about the card left on the reader"
        assert t.is_alive() and box == {}  # nothing read: the read waits for a card of this session
        proc.send({"cmd": "remove_card"})
        wait_until(lambda: dev.reader_cleared(reader))
        proc.send(second)
        t.join(10)
        assert "error" not in box, box
        assert box["ident"].kind == kind
        if kind == "id_card":
            assert box["ident"].name == "测试居民二" and mine.name == "测试居民一"
        # The owner lifting the card and placing it again (re-presenting) in a session also works.
        _end_resident_session(dev)
        told = threading.Event()
        t, box = _read_in_thread(dev, dev.session, kind, on_left_card=told.set)
        assert told.wait(10)
        proc.send({"cmd": "remove_card"})
        wait_until(lambda: dev.reader_cleared(reader))
        proc.send(first)
        t.join(10)
        assert "ident" in box, box
        proc.send({"cmd": "remove_card"})
        assert dev.cards_present() == set()
    finally:
        dev.close()
