"""The kiosk agent's side of ``cmd/update``: run the updater in the background and report on
``update/state`` (contract/updates.py).

The agent answers the command at once (accepted, or refused while another update runs) and hands
the work to one background thread, so neither the MQTT loop nor the command worker ever waits on
a download or a pip install. The thread installs (``downloading`` -> ``installed``, or
``failed``) and asks for the switch (``switched``, or ``deferred`` naming the activity that holds
the update lock). The switch restarts the kiosk app and its health window is watched outside
this process, so the end of an update (``committed`` / ``rolled_back``) is read from the
updater's own state file by :meth:`UpdateRunner.poll`, which the agent calls every second: it
holds across restarts of the app, the agent and the controller.

``UpdateSteps`` is what the updater does; :class:`LocalSteps` runs it in-process (tests, a kiosk
whose agent runs as the updater's user), :class:`CliSteps` runs ``kiosk-updater`` as a separate
transient systemd unit so the switch's restart of kiosk.service does not kill the watcher.
"""

from __future__ import annotations

import json
import logging
import subprocess
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

from contract import updates
from foundation.errors import KioskError

log = logging.getLogger(__name__)
ABORTED = "aborted: the roll-out was aborted by an operator"


@dataclass(frozen=True)
class Step:
    status: str  # installed | switched | deferred
    version: str
    reason: str = ""


class UpdateSteps(Protocol):
    def install(self, url: str, manifest_sha256: str) -> Step: ...
    def switch(self, version: str) -> Step: ...
    def status(self) -> dict[str, Any]: ...  # current, trial ({version}), last_result ({status, version, reason})
    def abort(self, version: str) -> Step: ...


class UpdateRunner:
    """At most one update at a time; reports every step through ``publish(body)``."""

    def __init__(self, kiosk_id: str, steps: UpdateSteps, publish: Callable[[dict[str, Any]], None], *,
                 clock: Callable[[], float], last: dict[str, Any] | None = None,
                 retry_s: float = 60.0, retries: int = 30) -> None:
        self.kiosk_id = kiosk_id
        # A deferred switch (a resident is being served) is tried again every ``retry_s`` seconds,
        # ``retries`` times; each attempt that is still deferred is reported with its reason.
        self.retry_s, self.retries = retry_s, retries
        self.stopped = threading.Event()
        self.steps = steps
        self.publish = publish
        self.clock = clock
        self.last: dict[str, Any] = dict(last or {})  # the last update/state body published
        self._lock = threading.Lock()
        self._thread: threading.Thread | None = None

    @property
    def busy(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    def _report(self, state: str, version: str, reason: str = "", **ctx: str) -> None:
        running = ""
        try:
            running = str(self.steps.status().get("current") or "")
        except (KioskError, OSError, ValueError) as exc:
            log.warning("updater status unreadable: %s", exc)
        body = updates.state(self.kiosk_id, state=state, version=version, ts=self.clock(), reason=reason,
                             running=running, rollout=str(ctx.get("rollout", self.last.get("rollout")) or ""),
                             command=str(ctx.get("command", self.last.get("command")) or ""))
        self.last = body
        log.info("update", extra={"fields": {"state": state, "version": version, "reason": reason[:120]}})
        self.publish(body)

    def start(self, command_id: str, args: dict[str, Any]) -> dict[str, Any]:
        """Accept one ``cmd/update`` (arguments already checked against the contract)."""
        with self._lock:
            if self.busy:
                raise KioskError(f"update_busy: the update to {self.last.get('version', '?')} is still running")
            ctx = {"rollout": str(args.get("rollout", "")), "command": command_id}
            self._thread = threading.Thread(target=self._run, args=(args, ctx), name="agent-update", daemon=True)
            self._thread.start()
        return {"accepted": args["version"]}

    def _run(self, args: dict[str, Any], ctx: dict[str, str]) -> None:
        version = args["version"]
        try:
            st = self.steps.status()
            if st.get("current") == version:
                self._report("committed", version, **ctx)  # already runs it: nothing to do
                return
            self._report("downloading", version, **ctx)
            step = self.steps.install(args["url"], args["manifest_sha256"])
            if step.version != version:
                raise KioskError(f"wrong_release: the manifest at the URL is {step.version}, not {version}")
            self._report("installed", version, **ctx)
            step = self.steps.switch(version)
            self._report(step.status, version, step.reason, **ctx)
            for _ in range(self.retries):
                if step.status != "deferred" or self.stopped.wait(self.retry_s):
                    break
                step = self.steps.switch(version)
                if step.status != "deferred" or step.reason != self.last.get("reason"):
                    self._report(step.status, version, step.reason, **ctx)
        except KioskError as exc:
            self._report("failed", version, str(exc)[:300] or type(exc).__name__, **ctx)
        except Exception as exc:  # noqa: BLE001 - an update must end in a report, never in silence
            log.exception("update to %s failed", version)
            self._report("failed", version, f"internal: {type(exc).__name__}: {exc}"[:300], **ctx)

    def abort(self, version: str) -> dict[str, Any]:
        """An aborted roll-out: roll the release on trial back now (the end is reported by poll)."""
        step = self.steps.abort(version)
        return {"rolled_back": step.version}

    def poll(self) -> None:
        """Report what the updater decided since: the trial's end, read from its state file."""
        if self.busy or not self.last:
            return
        version, state = self.last.get("version", ""), self.last.get("state", "")
        if state in updates.FINAL or state == "deferred":
            return
        try:
            st = self.steps.status()
        except (KioskError, OSError, ValueError) as exc:
            log.debug("updater status unreadable: %s", exc)
            return
        result = st.get("last_result") or {}
        trial = st.get("trial") or {}
        if result.get("version") == version and result.get("status") in ("committed", "rolled_back"):
            self._report(result["status"], version, str(result.get("reason") or "")
                         if result["status"] == "rolled_back" else "")
        elif trial.get("version") == version and state != "switched":
            self._report("switched", version)


class LocalSteps:
    """The updater in this process: Installer + Fetcher + Switcher, and a watcher thread for the
    health window (what ``kiosk-updater switch`` does in its own process)."""

    def __init__(self, installer: Any, switcher: Any, *, fetcher: Callable[[str], Any],
                 restart: Callable[[], None], observe: Callable[[Any], Any],
                 wait: Callable[[float], None], interval: float = 1.0) -> None:
        self.installer, self.sw, self.fetcher = installer, switcher, fetcher
        self.restart, self.observe, self.wait, self.interval = restart, observe, wait, interval

    def install(self, url: str, manifest_sha256: str) -> Step:
        fetch = self.fetcher(url)
        raw = fetch.manifest()
        from kiosk_ui.updater.install import check_pin

        check_pin(raw, manifest_sha256)
        man = self.installer.check(raw, self.sw.current())
        self.installer.install(man, fetch.ensure)
        return Step("installed", man.version)

    def switch(self, version: str) -> Step:
        from kiosk_ui.updater.watch import watch

        out = self.sw.switch(version)
        if out.status != "switched":
            return Step(out.status, version, out.reason)
        self.restart()
        threading.Thread(target=watch, args=(self.sw, self.observe), daemon=True, name="update-watch",
                         kwargs={"restart": self.restart, "wait": self.wait, "interval": self.interval}).start()
        return Step("switched", version)

    def abort(self, version: str) -> Step:
        trial = self.sw.state().trial
        if trial is None or trial.version != version:
            raise KioskError(f"no_trial: release {version} is not on trial here")
        out = self.sw.rollback(ABORTED)
        self.restart()
        return Step(out.status, version, out.reason)

    def status(self) -> dict[str, Any]:
        st = self.sw.state()
        return {"current": self.sw.current(), "trial": st.trial.__dict__ if st.trial else None,
                "last_result": st.last_result}


class CliSteps:
    """``kiosk-updater`` (run as root, e.g. through ``sudo -n``); the switch runs as a transient
    unit (``systemd-run``) so restarting kiosk.service cannot stop its own health watcher."""

    def __init__(self, updater: Sequence[str] = ("sudo", "-n", "kiosk-updater"),
                 detach: Sequence[str] = ("systemd-run", "--wait", "--pipe", "--collect", "--unit=kiosk-update-switch"),
                 tls: Sequence[str] = (), run: Callable[..., subprocess.CompletedProcess] = subprocess.run) -> None:
        self.updater, self.detach, self.tls, self.run = tuple(updater), tuple(detach), tuple(tls), run

    def _call(self, *args: str, timeout: float = 3600) -> dict[str, Any]:
        proc = self.run([*self.updater, *args], capture_output=True, text=True, timeout=timeout)
        if proc.returncode != 0:
            raise KioskError((proc.stderr.strip().splitlines() or [f"exit status {proc.returncode}"])[-1][:300])
        try:
            return json.loads(proc.stdout.strip().splitlines()[-1])
        except (ValueError, IndexError):
            raise KioskError(f"kiosk-updater {args[0]} printed no result") from None

    def install(self, url: str, manifest_sha256: str) -> Step:
        out = self._call("install", url, "--manifest-sha256", manifest_sha256, *self.tls)
        return Step("installed", str(out.get("installed", "")))

    def switch(self, version: str) -> Step:
        """Switch and watch in a transient unit; when this agent outlives the restart (its own
        unit), the updater's answer (deferred, committed, rolled_back) comes back on stdout."""
        proc = self.run([*self.detach, *self.updater, "switch", version], capture_output=True, text=True,
                        timeout=7200)
        try:
            out = json.loads(proc.stdout.strip().splitlines()[-1])
        except (ValueError, IndexError):
            raise KioskError(f"switch failed: {(proc.stderr.strip() or f'exit status {proc.returncode}')[-200:]}") \
                from None
        status = out.get("status")
        if status not in updates.STATES:
            raise KioskError(f"switch failed: kiosk-updater answered {str(status)[:32]!r}")
        return Step(status, version, str(out.get("reason") or ""))

    def status(self) -> dict[str, Any]:
        return self._call("status", "--json", timeout=30)

    def abort(self, version: str) -> Step:
        out = self._call("abort", version, timeout=300)
        return Step(str(out.get("status", "")), version, str(out.get("reason", "")))
