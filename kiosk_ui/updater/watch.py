"""Watching a release on trial: observe it, then commit or roll back (pure decision in health.py).

In a deployment the observer is :class:`SystemdObserver` plus the health signal files: systemd
knows whether the unit reached READY (``Type=notify``: ``ActiveState=active``) and how often it
was restarted since the switch (``NRestarts``); the release reports ``broker`` and ``devices``
itself. ``restart`` restarts the kiosk service after a roll-back so the old release runs again.
"""

from __future__ import annotations

import logging
import subprocess
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from kiosk_ui.updater.health import COMMIT, ROLLBACK, Observation, decide, read_signals
from kiosk_ui.updater.state import Trial
from kiosk_ui.updater.switch import Outcome, Switcher

log = logging.getLogger(__name__)


def watch(sw: Switcher, observe: Callable[[Trial], Observation], *, restart: Callable[[], None],
          wait: Callable[[float], None], interval: float = 1.0) -> Outcome:
    """Run the health window of the pending trial to its end; returns committed or rolled_back."""
    while True:
        trial = sw.state().trial
        if trial is None:
            return Outcome("nothing", sw.current())
        verdict, reason = decide(sw.policy, trial.started, observe(trial), sw.clock())
        if verdict == COMMIT:
            return sw.commit()
        if verdict == ROLLBACK:
            out = sw.rollback(reason)
            restart()
            return out
        wait(interval)


def parse_show(text: str) -> dict[str, str]:
    """``systemctl show -p A -p B UNIT`` output (``A=x`` lines) as a dict."""
    out = {}
    for line in text.splitlines():
        key, sep, value = line.partition("=")
        if sep:
            out[key.strip()] = value.strip()
    return out


@dataclass
class SystemdObserver:
    """Readiness and crashes of the kiosk unit from systemd, signals from the health folder."""

    unit: str
    health_dir: Path
    run: Callable[..., subprocess.CompletedProcess] = subprocess.run
    baseline_restarts: int | None = None

    def show(self) -> dict[str, str]:
        proc = self.run(["systemctl", "show", "-p", "ActiveState", "-p", "SubState", "-p", "NRestarts",
                         "-p", "Result", self.unit], capture_output=True, text=True, timeout=10)
        return parse_show(proc.stdout) if proc.returncode == 0 else {}

    def __call__(self, trial: Trial) -> Observation:
        props = self.show()
        restarts = int(props.get("NRestarts", "0") or 0)
        if self.baseline_restarts is None:
            self.baseline_restarts = restarts
        signals = set(read_signals(self.health_dir, trial.version, trial.started))
        if props.get("ActiveState") == "active":
            signals.add("ready")
        else:
            signals.discard("ready")
        crashed = None
        if props.get("ActiveState") == "failed":
            crashed = f"unit failed ({props.get('Result', '?')})"
        elif restarts > self.baseline_restarts:
            crashed = f"restarted {restarts - self.baseline_restarts} time(s) ({props.get('Result', '?')})"
        return Observation(frozenset(signals), crashed)
