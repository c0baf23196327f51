"""The health window after a switch: which signals a release must give, and the decision.

A release on trial proves itself with three signals, each reported by the running release
through :func:`report` (stdlib only, so any release can carry this module): ``ready`` (the UI
drew its first frame; the same moment it sends sd_notify READY=1), ``broker`` (the agent reached
the MQTT broker) and ``devices`` (the critical devices answered their handshake). Then it must
run ``window_s`` (default 5 min) without a crash. :func:`decide` is pure: (policy, trial start,
observation, now) -> commit, roll back with a reason, or wait. A release that crashes on import
or never reaches the broker is rolled back ``signal_deadline_s`` after the switch (default 60 s,
so the kiosk is back on the old release well within 90 s).
"""

from __future__ import annotations

import json
import os
import time
from dataclasses import dataclass
from pathlib import Path

SIGNALS = ("ready", "broker", "devices")
WAIT, COMMIT, ROLLBACK = "wait", "commit", "rollback"
_MISSING_REASON = {"ready": "not_ready", "broker": "no_broker", "devices": "devices_failed"}


@dataclass(frozen=True)
class HealthPolicy:
    window_s: float = 300.0
    signal_deadline_s: float = 60.0
    required: tuple[str, ...] = SIGNALS
    max_trial_boots: int = 3  # starts of the release on trial (crash restarts, power cuts) before roll-back

    def __post_init__(self) -> None:
        if self.window_s <= 0 or self.signal_deadline_s <= 0 or self.max_trial_boots < 1:
            raise ValueError("health policy: window_s, signal_deadline_s > 0 and max_trial_boots >= 1")
        unknown = set(self.required) - set(SIGNALS)
        if unknown:
            raise ValueError(f"health policy: unknown signals {sorted(unknown)}")


@dataclass(frozen=True)
class Observation:
    signals: frozenset[str]
    crashed: str | None = None  # what the observer saw crash (exit status, restart count), or None


def decide(policy: HealthPolicy, started: float, obs: Observation, now: float) -> tuple[str, str]:
    """(WAIT|COMMIT|ROLLBACK, reason)."""
    if obs.crashed:
        return ROLLBACK, f"crashed: {obs.crashed}"
    elapsed = now - started
    missing = [s for s in policy.required if s not in obs.signals]
    if missing:
        if elapsed >= policy.signal_deadline_s:
            return ROLLBACK, f"{_MISSING_REASON[missing[0]]}: no {missing[0]} signal {elapsed:.0f} s after the switch"
        return WAIT, f"waiting for {', '.join(missing)}"
    if elapsed >= policy.window_s:
        return COMMIT, f"healthy for {elapsed:.0f} s"
    return WAIT, f"healthy, {policy.window_s - elapsed:.0f} s of the window left"


# -- the signal files: one writer (the release) and one reader (the updater) -------------------

def report(signal: str, version: str, health_dir: str | os.PathLike, *, now: float | None = None) -> None:
    """Record that release ``version`` reached ``signal`` (atomic write, so a reader never sees half)."""
    if signal not in SIGNALS:
        raise ValueError(f"unknown health signal {signal!r}")
    d = Path(health_dir)
    d.mkdir(parents=True, exist_ok=True)
    tmp = d / f".{signal}.{os.getpid()}.tmp"
    tmp.write_text(json.dumps({"signal": signal, "version": version, "pid": os.getpid(),
                               "ts": time.time() if now is None else now}))
    os.replace(tmp, d / signal)


def read_signals(health_dir: str | os.PathLike, version: str, since: float) -> frozenset[str]:
    """The signals release ``version`` reported at or after ``since`` (older ones are another run's)."""
    got = set()
    for signal in SIGNALS:
        try:
            rec = json.loads((Path(health_dir) / signal).read_text())
        except (OSError, ValueError):
            continue
        if isinstance(rec, dict) and rec.get("version") == version and isinstance(rec.get("ts"), (int, float)) \
                and rec["ts"] >= since:
            got.add(signal)
    return frozenset(got)
