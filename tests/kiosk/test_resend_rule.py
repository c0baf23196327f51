"""The agent's re-send decisions from the controller's presence (kiosk_ui.agent.resend_rule)."""

from __future__ import annotations

from kiosk_ui.agent.resend_rule import send_again_at_once, send_again_when_due


def test_send_again_at_once_only_when_the_controller_comes_back_from_offline() -> None:
    assert send_again_at_once(False, True)
    assert not send_again_at_once(None, True)  # first read on a fresh connection: the timer decides
    assert not send_again_at_once(True, True)
    assert not send_again_at_once(True, False)
    assert not send_again_at_once(False, False)


def test_timed_resend_waits_its_time_and_holds_while_the_controller_is_offline() -> None:
    assert send_again_when_due(True, 100.0, 110.0, 10.0)
    assert send_again_when_due(None, 100.0, 110.0, 10.0)
    assert not send_again_when_due(True, 100.0, 109.9, 10.0)
    assert not send_again_when_due(False, 100.0, 500.0, 10.0)
