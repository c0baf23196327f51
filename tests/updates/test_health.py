"""The health window's decision (pure) and the systemd observer's reading of `systemctl show`."""

from __future__ import annotations

import subprocess

import pytest

from kiosk_ui.updater.health import COMMIT, ROLLBACK, SIGNALS, WAIT, HealthPolicy, Observation, decide, report
from kiosk_ui.updater.state import Trial
from kiosk_ui.updater.watch import SystemdObserver, parse_show

P = HealthPolicy(window_s=300, signal_deadline_s=60)
ALL = frozenset(SIGNALS)


@pytest.mark.parametrize("signals,crashed,elapsed,verdict,reason", [
    (ALL, None, 299, WAIT, "healthy, 1 s"),
    (ALL, None, 300, COMMIT, "healthy for 300 s"),
    (ALL, "exit status 1", 1, ROLLBACK, "crashed: exit status 1"),
    (frozenset({"ready"}), None, 59, WAIT, "waiting for broker, devices"),
    (frozenset({"ready"}), None, 60, ROLLBACK, "no_broker"),
    (frozenset(), None, 61, ROLLBACK, "not_ready"),
    (frozenset({"ready", "broker"}), None, 60, ROLLBACK, "devices_failed"),
    (ALL, None, 10 ** 6, COMMIT, "healthy"),  # a watcher resumed long after the switch
    (frozenset(), None, 10 ** 6, ROLLBACK, "not_ready"),
])
def test_decide(signals, crashed, elapsed, verdict, reason):
    got, why = decide(P, 1000.0, Observation(signals, crashed), 1000.0 + elapsed)
    assert got == verdict and why.startswith(reason)


def test_policy_refuses_nonsense():
    with pytest.raises(ValueError):
        HealthPolicy(window_s=0)
    with pytest.raises(ValueError):
        HealthPolicy(required=("ready", "coffee"))


def test_systemd_observer_sees_ready_restarts_and_signals(tmp_path):
    shows = iter(["ActiveState=activating\nSubState=start\nNRestarts=2\nResult=success\n",
                  "ActiveState=active\nSubState=running\nNRestarts=2\nResult=success\n",
                  "ActiveState=activating\nSubState=auto-restart\nNRestarts=3\nResult=exit-code\n",
                  "ActiveState=failed\nSubState=failed\nNRestarts=3\nResult=start-limit-hit\n"])

    def run(argv, **kw):  # stands in for systemctl only in this unit test
        assert argv[:2] == ["systemctl", "show"] and argv[-1] == "kiosk.service"
        return subprocess.CompletedProcess(argv, 0, next(shows), "")

    obs = SystemdObserver("kiosk.service", tmp_path, run=run)
    trial = Trial(version="2.0.0", previous="1.0.0", started=100.0)
    report("broker", "2.0.0", tmp_path, now=101.0)
    report("devices", "1.0.0", tmp_path, now=101.0)  # the old release's signal does not count
    first = obs(trial)
    assert first == Observation(frozenset({"broker"}), None)
    assert obs(trial) == Observation(frozenset({"broker", "ready"}), None)
    assert obs(trial).crashed == "restarted 1 time(s) (exit-code)"
    assert obs(trial).crashed == "unit failed (start-limit-hit)"
    assert parse_show("A=1\nnoise\nB=x=y\n") == {"A": "1", "B": "x=y"}
