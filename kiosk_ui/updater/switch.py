"""Switch, commit, roll back, and recover at start-up: the updater's steps that move links.

Every step is a sequence of Fs calls ordered so that a kill or power cut between any two of
them is recovered by :meth:`Switcher.recover` to exactly the old or exactly the new release:

- switch:   save state with the trial  ->  point ``current`` at the new release
- commit:   point ``committed`` at it  ->  save state without the trial
- rollback: save the reason in the trial  ->  point ``current`` back  ->  save state (bad += version)

Boots are counted only while a trial is pending (:meth:`boot`, run by kiosk.service before each
start), so power cuts during ordinary boots never roll anything back (RAUC #490).
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable
from dataclasses import dataclass, replace

from kiosk_ui.updater.fsops import Fs
from kiosk_ui.updater.health import HealthPolicy
from kiosk_ui.updater.locks import SwitchGuard
from kiosk_ui.updater.state import INSTALLED_MARK, Layout, Trial, UpdateError, UpdateState

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Outcome:
    status: str  # switched | deferred | committed | rolled_back | nothing
    version: str | None = None
    reason: str = ""


class Switcher:
    def __init__(self, layout: Layout, *, fs: Fs | None = None, clock: Callable[[], float],
                 policy: HealthPolicy = HealthPolicy(), lock_dir=None) -> None:
        self.lay = layout
        self.fs = fs or Fs()
        self.clock = clock
        self.policy = policy
        self.lock_dir = lock_dir or (layout.root / "locks")

    # -- state ---------------------------------------------------------------------------------
    def state(self) -> UpdateState:
        return self.lay.load()

    def _save(self, state: UpdateState) -> None:
        self.fs.write_atomic(self.lay.state_file, state.to_json())

    def current(self) -> str | None:
        return self.lay.link_version(self.lay.current)

    def committed(self) -> str | None:
        return self.lay.link_version(self.lay.committed)

    # -- first install (provisioning): a release becomes current and committed at once ----------
    def activate_first(self, version: str) -> None:
        if self.committed() is not None:
            raise UpdateError("already_active", f"release {self.committed()} is already committed; use switch")
        self._need_installed(version)
        self.fs.point(self.lay.current, self.lay.target(version))
        self.fs.point(self.lay.committed, self.lay.target(version))

    def _need_installed(self, version: str) -> None:
        if not self.lay.installed(version):
            raise UpdateError("not_installed", f"release {version} is not (completely) installed")

    # -- switch ----------------------------------------------------------------------------------
    def switch(self, version: str) -> Outcome:
        """Make ``version`` current and start its trial, unless an activity holds the lock."""
        st = self.state()
        if st.trial is not None:
            raise UpdateError("trial_pending", f"release {st.trial.version} is still on trial")
        if version in st.bad:
            raise UpdateError("marked_bad", f"release {version} failed on this kiosk before")
        self._need_installed(version)
        cur = self.current()
        if cur is None or cur == version:
            raise UpdateError("nothing_to_switch", f"current is {cur!r}; cannot switch to {version}")
        now = self.clock()
        with SwitchGuard(self.lock_dir, now) as guard:
            if guard.busy:
                reason = "; ".join(b.describe() for b in guard.busy)
                if any(b.stale for b in guard.busy):
                    log.warning("update deferred (locked)", extra={"fields": {"version": version, "reason": reason}})
                return Outcome("deferred", version, reason)
            self._save(replace(st, trial=Trial(version=version, previous=cur, started=now)))
            self.fs.point(self.lay.current, self.lay.target(version))
        log.info("switched", extra={"fields": {"version": version, "previous": cur}})
        return Outcome("switched", version)

    # -- end of the trial -----------------------------------------------------------------------
    def commit(self) -> Outcome:
        st = self.state()
        if st.trial is None:
            return Outcome("nothing")
        v = st.trial.version
        self.fs.point(self.lay.committed, self.lay.target(v))
        self._save(replace(st, trial=None, last_result={"status": "committed", "version": v,
                                                          "at": self.clock()}))
        log.info("committed", extra={"fields": {"version": v}})
        self.prune()
        return Outcome("committed", v)

    def rollback(self, reason: str) -> Outcome:
        st = self.state()
        if st.trial is None:
            return Outcome("nothing")
        st = replace(st, trial=replace(st.trial, rollback_reason=reason))
        self._save(st)
        return self._finish_rollback(st)

    def _finish_rollback(self, st: UpdateState) -> Outcome:
        trial = st.trial
        assert trial is not None and trial.rollback_reason is not None
        if self.current() != trial.previous:
            self.fs.point(self.lay.current, self.lay.target(trial.previous))
        bad = st.bad if trial.version in st.bad else (*st.bad, trial.version)
        self._save(replace(st, trial=None, bad=bad, last_result={
            "status": "rolled_back", "version": trial.version, "to": trial.previous,
            "reason": trial.rollback_reason, "at": self.clock()}))
        log.warning("rolled back", extra={"fields": {"version": trial.version, "to": trial.previous,
                                                     "reason": trial.rollback_reason}})
        self.prune()
        return Outcome("rolled_back", trial.version, trial.rollback_reason)

    # -- start-up ---------------------------------------------------------------------------------
    def recover(self) -> Outcome:
        """Bring links and state back to one consistent release after a kill or power cut."""
        for leftover in self.lay.root.glob(".*.new"):
            self.fs.remove(leftover)
        for leftover in self.lay.root.glob(".*.tmp"):
            self.fs.remove(leftover)
        st = self.state()
        out = Outcome("nothing", self.current())
        trial = st.trial
        if trial is not None:
            if trial.rollback_reason is not None:
                out = self._finish_rollback(st)
            elif self.committed() == trial.version:
                out = self.commit()  # the commit's link moved; its state write did not happen
            elif self.current() != trial.version:
                # The switch's link never moved: the old release is still current. No trial.
                self._save(replace(st, trial=None))
                out = Outcome("nothing", self.current(), "switch did not happen")
        if self.state().trial is None:
            # Outside a trial the kiosk runs the committed release, whatever a cut left behind.
            good = self.committed()
            if good is not None and self.current() != good:
                self.fs.point(self.lay.current, self.lay.target(good))
        self._reclaim()
        return out

    def _reclaim(self) -> None:
        """Remove release folders that never finished installing (not named by any link or trial)."""
        st = self.state()
        keep = {self.current(), self.committed()}
        if st.trial is not None:
            keep |= {st.trial.version, st.trial.previous}
        if not self.lay.releases.is_dir():
            return
        for d in sorted(self.lay.releases.iterdir()):
            if d.name not in keep and not (d / INSTALLED_MARK).is_file():
                self.fs.remove(d)

    def prune(self) -> None:
        """Reclaim disk outside a trial: keep the committed release, the one before it (a manual
        way back) and newer ones installed ahead; drop bad and older releases, then every object
        no kept release names. A release loses its .installed mark before its files, so a cut
        in the middle never leaves a marked but partial release."""
        from contract.release import parse_version

        st = self.state()
        good = self.committed()
        if st.trial is not None or good is None or not self.lay.releases.is_dir():
            return
        installed = sorted((d.name for d in self.lay.releases.iterdir() if self.lay.installed(d.name)),
                           key=parse_version)
        older = [v for v in installed if parse_version(v) < parse_version(good) and v not in st.bad]
        keep = {good, self.current(), *older[-1:]}
        keep |= {v for v in installed if parse_version(v) > parse_version(good) and v not in st.bad}
        for d in sorted(self.lay.releases.iterdir()):
            if d.name not in keep:
                self.fs.remove(d / INSTALLED_MARK)
                self.fs.remove(d)
        named: set[str] = set()
        for v in keep:
            try:
                named |= {f["sha256"] for f in json.loads((self.lay.release(v) / "release.json").read_text())["files"].values()}
            except (OSError, ValueError, KeyError, TypeError, AttributeError):
                return  # cannot tell what is still needed: keep every object
        if self.lay.objects.is_dir():
            for obj in sorted(self.lay.objects.iterdir()):
                if obj.name not in named and not obj.name.startswith("."):
                    self.fs.remove(obj)

    def boot(self) -> Outcome:
        """Run before every start of the kiosk: recover, then count this start if a trial is on."""
        out = self.recover()
        st = self.state()
        if st.trial is None:
            return out
        boots = st.trial.boots + 1
        if boots > self.policy.max_trial_boots:
            return self.rollback(f"boot_loop: release started {boots - 1} times without passing its health window")
        self._save(replace(st, trial=replace(st.trial, boots=boots)))
        return Outcome("trial", st.trial.version, f"start {boots} of {self.policy.max_trial_boots}")
