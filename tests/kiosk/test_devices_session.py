"""The kiosk's device layer over a real pseudo-terminal: a session's end cancels its card read, and a
late reset of the previous session never cancels (or wipes under) the next resident's read."""

from __future__ import annotations

import threading
import time

import pytest

from kiosk_ui.devices import Devices, ReadCancelled


def _read_in_thread(dev: Devices, session: int) -> tuple[threading.Thread, dict]:
    box: dict = {}

    def run():
        try:
            box["ident"] = dev.read_identity("id_card", 10, session=session)
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
        old, old_box = _read_in_thread(dev, dev.session)
        time.sleep(0.3)
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
