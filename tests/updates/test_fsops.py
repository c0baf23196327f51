"""The updater's one door to the disk (kiosk_ui/updater/fsops.py): what the real ``Fs`` must do."""

from __future__ import annotations

import os

from kiosk_ui.updater import fsops
from kiosk_ui.updater.fsops import Fs


def test_write_new_finishes_a_short_write(tmp_path, monkeypatch):
    # os.write may take less than it is given (a disk nearly full, a signal): nothing may be lost.
    real = os.write
    monkeypatch.setattr(fsops.os, "write", lambda fd, data: real(fd, bytes(data[:3])))
    Fs().write_new(tmp_path / "object.part", b"0123456789")
    assert (tmp_path / "object.part").read_bytes() == b"0123456789"


def test_write_new_replaces_a_leftover_part(tmp_path):
    part = tmp_path / "object.part"
    part.write_bytes(b"left over from a killed run, longer than the new content")
    Fs().write_new(part, b"new")
    assert part.read_bytes() == b"new"
