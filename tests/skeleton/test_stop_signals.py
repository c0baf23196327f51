"""SIGTERM and SIGINT in each phase of a service process (foundation/lifecycle.py): while it
starts they interrupt the start; from ``stop_signals`` on they only ask for the orderly stop, so
one arriving while the process starts its console (the controller) is not an exception that
skips the stop."""

from __future__ import annotations

import os
import signal

import pytest

from foundation import lifecycle


@pytest.fixture
def handlers_restored():
    saved = {sig: signal.getsignal(sig) for sig in (signal.SIGTERM, signal.SIGINT)}
    yield
    for sig, handler in saved.items():
        signal.signal(sig, handler)


class Service:
    def __init__(self) -> None:
        self.stopped = False

    def start(self, say) -> None:
        say("started")

    def stop(self) -> None:
        self.stopped = True


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT])
def test_a_signal_after_the_start_asks_for_the_stop_and_raises_nothing(handlers_restored, sig):
    service = Service()
    assert lifecycle.start_service(service, say=lambda _: None) is None
    stop = lifecycle.stop_signals()
    os.kill(os.getpid(), sig)  # handled before os.kill returns to Python code
    assert stop.wait(5)
    lifecycle.wait_for_stop_signal(stop)  # returns at once: the signal was not lost


def test_while_starting_a_signal_interrupts_the_start(handlers_restored):
    lifecycle.raise_on_stop_signal()
    with pytest.raises(lifecycle.StopRequested, match="SIGTERM while starting"):
        os.kill(os.getpid(), signal.SIGTERM)
        signal.sigtimedwait([], 0)  # a point where Python runs the pending handler, if it has not yet
