"""The kiosk's hook for the soak's clock steps: the stepped wall clock of a simulated kiosk
(the disk-full behaviour is in test_regressions.py, where the soak found it)."""

from __future__ import annotations

from kiosk_ui.agent.stepped_clock import SteppedClock


class Ticks:
    def __init__(self) -> None:
        self.t = 0.0

    def __call__(self) -> float:
        return self.t


def test_the_clock_follows_the_offset_file_within_a_recheck(tmp_path):
    path = tmp_path / "clock-offset"
    mono = Ticks()
    clock = SteppedClock(path, wall=lambda: 1_000_000.0, monotonic=mono, recheck=1.0)
    assert clock() == 1_000_000.0  # no file: no offset
    path.write_text("-3600\n")
    assert clock() == 1_000_000.0  # not looked at again before a second has passed
    mono.t = 1.0
    assert clock() == 1_000_000.0 - 3600
    path.write_text("not a number")
    mono.t = 2.0
    assert clock() == 1_000_000.0 - 3600  # a bad file keeps the last good offset
    path.write_text("1e12")
    mono.t = 3.0
    assert clock() == 1_000_000.0 - 3600  # out of range: kept too
    path.unlink()
    mono.t = 4.0
    assert clock() == 1_000_000.0
