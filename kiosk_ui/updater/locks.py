"""The update lock: no switch while a resident session, a print or a card read is under way.

Each activity holds an exclusive ``flock`` on its own file in the lock folder for as long as it
runs (``with hold(...)``) and writes there when it started and how long it may take. The kernel
drops a flock when its holder dies, so a crashed holder never leaves a stale lock behind. The
updater takes every lock file itself for the length of the switch (nothing new starts meanwhile).
A lock held longer than its limit is a hung activity: the updater answers ``deferred (locked)``
naming it, instead of waiting without end (balena supervisor #810).
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

ACTIVITIES = ("session", "print", "card_read")


@dataclass(frozen=True)
class Busy:
    activity: str
    age_s: float
    limit_s: float

    @property
    def stale(self) -> bool:
        return self.age_s > self.limit_s

    def describe(self) -> str:
        state = "deferred (locked)" if self.stale else "deferred (busy)"
        return f"{state}: {self.activity} held {self.age_s:.0f} s (limit {self.limit_s:.0f} s)"


def acquire(lock_dir: str | os.PathLike, activity: str, limit_s: float, *, now: float | None = None) -> int:
    """Take the lock for ``activity`` (blocks while the updater is switching); returns the fd to
    :func:`release`. For activities that span calls, such as a resident session."""
    if activity not in ACTIVITIES:
        raise ValueError(f"unknown activity {activity!r}")
    Path(lock_dir).mkdir(parents=True, exist_ok=True)
    fd = os.open(Path(lock_dir) / f"{activity}.lock", os.O_RDWR | os.O_CREAT, 0o664)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        os.ftruncate(fd, 0)
        os.pwrite(fd, json.dumps({"since": time.time() if now is None else now, "limit_s": limit_s}).encode(), 0)
    except BaseException:
        os.close(fd)
        raise
    return fd


def release(fd: int) -> None:
    os.close(fd)  # closing drops the flock


@contextlib.contextmanager
def hold(lock_dir: str | os.PathLike, activity: str, limit_s: float, *, now: float | None = None) -> Iterator[None]:
    """Hold the lock for ``activity`` (blocks while the updater is switching)."""
    fd = acquire(lock_dir, activity, limit_s, now=now)
    try:
        yield
    finally:
        release(fd)


class SwitchGuard:
    """Try to take every activity's lock; ``busy`` lists the activities that held theirs."""

    def __init__(self, lock_dir: str | os.PathLike, now: float) -> None:
        self.lock_dir = Path(lock_dir)
        self.now = now
        self.busy: list[Busy] = []
        self._fds: list[int] = []

    def __enter__(self) -> SwitchGuard:
        self.lock_dir.mkdir(parents=True, exist_ok=True)
        for activity in ACTIVITIES:
            fd = os.open(self.lock_dir / f"{activity}.lock", os.O_RDWR | os.O_CREAT, 0o664)
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                self.busy.append(self._describe(activity, fd))
                os.close(fd)
                continue
            self._fds.append(fd)
        return self

    def _describe(self, activity: str, fd: int) -> Busy:
        try:
            rec = json.loads(os.pread(fd, 4096, 0) or b"{}")
            since, limit = float(rec["since"]), float(rec["limit_s"])
        except (ValueError, KeyError, TypeError):
            # The holder has the lock but has not written its record yet (it does so at once).
            since, limit = self.now, float("inf")
        return Busy(activity, max(0.0, self.now - since), limit)

    def __exit__(self, *exc: object) -> None:
        for fd in self._fds:
            os.close(fd)
        self._fds.clear()
