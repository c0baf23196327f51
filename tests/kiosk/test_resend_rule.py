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


def test_a_controller_whose_broker_queued_the_events_gets_a_whole_wait_not_a_resend() -> None:
    from kiosk_ui.agent.resend_rule import came_back, restart_wait

    # Its presence says queued_while_away (one controller, persistent session): no re-send at once,
    # the acknowledgement wait starts again instead; only a return from offline counts.
    assert not send_again_at_once(False, True, True)
    assert restart_wait(False, True, True)
    assert not restart_wait(None, True, True) and not restart_wait(True, True, True)
    # Without the flag (several instances with clean sessions, an older controller): sent again, no restart.
    assert send_again_at_once(False, True, False) and not restart_wait(False, True, False)
    assert came_back(False, True) and not came_back(None, True) and not came_back(False, False)


def test_the_presence_flag_is_read_only_from_an_online_presence_that_says_true() -> None:
    from contract import payloads, topics

    def read(body: dict) -> bool:
        return payloads.controller_queued_while_away(topics.decode(topics.encode_to_kiosk(body)))

    assert read(payloads.controller_online(1.0, queued_while_away=True))
    assert not read(payloads.controller_online(1.0))  # absent: the safe old behaviour, re-send
    assert not read(payloads.controller_online(1.0, "a"))  # an instance of several never says it
    assert not read({"state": "online", "queued_while_away": "yes"})
    assert not read({**payloads.controller_offline("lwt"), "queued_while_away": True})
