"""The maintenance PIN lock-out survives a restart and grows (issue 14, item 8)."""

from __future__ import annotations

from kiosk_ui.viewmodels.maintenance import MAX_LOCKOUT, MaintenanceGate, hash_pin, lockout_seconds

PIN = hash_pin("2468", iterations=1000)


def _five_wrong(gate: MaintenanceGate, now: float) -> None:
    for _ in range(5):
        assert not gate.try_pin("0000", now)


def test_lockout_survives_a_restart_and_doubles(tmp_path):
    state = tmp_path / "maintenance-lock.json"
    gate = MaintenanceGate(PIN, state)
    _five_wrong(gate, 1000.0)
    assert gate.locked_for(1000.0) == 60
    again = MaintenanceGate(PIN, state)  # the kiosk was restarted (or its plug pulled)
    assert again.locked_for(1010.0) == 50 and not again.try_pin("2468", 1010.0)
    _five_wrong(again, 1061.0)
    assert again.locked_for(1061.0) == 120
    _five_wrong(again, 1200.0)
    assert MaintenanceGate(PIN, state).locked_for(1200.0) == 240
    # The right PIN after the lock-out ends everything, also across restarts.
    assert again.try_pin("2468", 1500.0)
    fresh = MaintenanceGate(PIN, state)
    _five_wrong(fresh, 2000.0)
    assert fresh.locked_for(2000.0) == 60


def test_lockout_is_capped_and_a_damaged_state_file_does_not_reset_it(tmp_path):
    assert lockout_seconds(1) == 60 and lockout_seconds(2) == 120 and lockout_seconds(40) == MAX_LOCKOUT
    state = tmp_path / "maintenance-lock.json"
    state.write_text("{not json")
    gate = MaintenanceGate(PIN, state)
    _five_wrong(gate, 0.0)
    assert gate.locked_for(0.0) == MAX_LOCKOUT
