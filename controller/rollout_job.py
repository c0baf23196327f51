"""The roll-out job: feeds kiosks' ``update/state`` and the passing of time into the pure
decisions of :mod:`controller.rollouts`, through :class:`controller.rollout_store.RolloutStore`,
and carries out the effects it won: ``cmd/update`` / ``cmd/update_rollback`` through the
controller's signed command path. Operator actions (create, approve, pause, resume, abort,
retry) are methods here, each audited.

With several controller instances on one PostgreSQL database every instance's job records the
kiosks' states it receives and the operator actions made on its console, but only the holder of
the singleton-jobs lease (``leads``) ticks and sends ``cmd/update``: the others decide with
sending left out, and the holder's next tick sends what their decision opened. An abort's
``cmd/update_rollback`` goes out at once from the instance the operator used.
"""

from __future__ import annotations

import logging
import queue
import threading
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

from contract import updates
from controller import rollout_reasons as RR
from controller import rollouts as RO
from controller import sql_dialect
from controller.fleet_db import FleetDb
from controller.release_local import LocalReleases, share_published
from controller.rollout_store import Decide, RolloutStore
from controller.store import list_kiosks
from controller.web.release_files import DownloadLimit
from foundation.errors import ConfigError, KioskError

log = logging.getLogger(__name__)


Send = Callable[..., Any]  # (kiosk_id, name, args, issuer, ttl=...) -> command id
Audit = Callable[[str, str, str, str, dict[str, Any]], None]  # (user, action, target, result, detail)


class RolloutJob:
    """``send`` and ``audit`` are the controller's (``for_controller``), or kioskctl's, which
    queues the commands for the running controller (``controller.ctl_rollouts``)."""

    def __init__(self, data_dir: Path, store: RolloutStore, *, send: Send, audit: Audit, base_url: str,
                 clock: Callable[[], float], interval: float = 1.0, time_zone: str = "Asia/Shanghai",
                 download_rate: float = 0.0, download_rate_per_kiosk: float = 0.0,
                 leads: Callable[[], bool] = lambda: True, downloads: DownloadLimit | None = None) -> None:
        self.data_dir = Path(data_dir)
        # Several controller instances: only the singleton-jobs lease holder advances waves.
        self.leads = leads
        self.time_zone = time_zone  # the fleet's: maintenance windows are in its local time
        self.send = send
        self.audit = audit
        self.store = store
        self.base_url = base_url.rstrip("/")
        self.clock = clock
        self.interval = interval
        # What the release serving (controller/web/rollout_api.py) takes every download's bytes from and
        # counts them in: one per job, made here from the two rates unless the caller hands one in.
        self.downloads = downloads if downloads is not None else DownloadLimit(download_rate, download_rate_per_kiosk)
        # The files of releases another instance published, copied here from the fleet database when asked for.
        self.local_releases = LocalReleases(store, self.data_dir)
        self.metrics = {"updates_sent": 0, "rollbacks_sent": 0, "waves_started": 0, "states_received": 0}
        self._inbox: queue.Queue[tuple[str, updates.UpdateState, float] | None] = queue.Queue()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._ro = threading.local()

    # -- inputs ---------------------------------------------------------------------------------------
    def on_update_state(self, kiosk_id: str, st: updates.UpdateState, now: float) -> None:
        """Called on the controller's ingest thread: hand over, never block it."""
        self._inbox.put((kiosk_id, st, now))

    def _conn(self):
        """This thread's read-only connection to the fleet database the roll-outs are in."""
        conn = getattr(self._ro, "conn", None)
        if conn is None:
            conn = self._ro.conn = self.store.db.connect(readonly=True)
        return conn

    def _fleet(self) -> list[dict[str, Any]]:
        return list_kiosks(self._conn())

    def _online(self, fresh: bool = False) -> set[str]:
        """Kiosks online now; read at most once per ``interval`` for the job's own steps (every
        kiosk's update/state asks, and reading the fleet costs as much as the fleet is big), at
        once for an operator's action (``fresh``)."""
        now = self.clock()
        cached = getattr(self._ro, "online", None)
        if fresh or cached is None or not 0 <= now - cached[0] < self.interval:
            cached = self._ro.online = (now, {k["kiosk_id"] for k in self._fleet() if k["state"] == "online"})
        return cached[1]

    def _groups(self) -> dict[str, set[str]]:
        out: dict[str, set[str]] = {}
        for row in self._conn().execute("SELECT group_name, kiosk_id FROM kiosk_groups"):
            out.setdefault(row[0], set()).add(row[1])
        return out

    # -- effects --------------------------------------------------------------------------------------
    def _carry_out(self, r: dict[str, Any], effects: list[tuple[str, str]], before: dict[str, Any] | None) -> None:
        if before is not None and r["wave"] != before["wave"]:
            self.metrics["waves_started"] += 1
            log.info("wave started", extra={"fields": {"rollout": r["id"], "wave": r["wave"]}})
            self.audit(f"rollout:{r['id']}", "rollout_wave", r["id"], "started", {"wave": r["wave"]})
        for kind, kiosk_id in effects:
            try:
                if kind == "update":
                    args = updates.update_args(version=r["version"], url=r["url"],
                                               manifest_sha256=r["manifest_sha256"], rollout=r["id"])
                    self.send(kiosk_id, "update", args, f"rollout:{r['id']}", ttl=min(r["timeout_s"], 86400))
                    self.metrics["updates_sent"] += 1
                elif kind == "rollback":
                    self.send(kiosk_id, "update_rollback", {"version": r["version"]}, f"rollout:{r['id']}")
                    self.metrics["rollbacks_sent"] += 1
            except KioskError as exc:
                log.error("roll-out %s: %s to %s not sent: %s", r["id"], kind, kiosk_id, exc)

    def _mutate(self, rollout_id: str, decide: Decide) -> dict[str, Any]:
        seen: dict[str, Any] = {}

        def deciding(cur: dict[str, Any]):
            seen["before"] = cur  # the last call is the one whose write won (or that changed nothing)
            return decide(cur)
        r, effects = self.store.mutate(rollout_id, deciding)
        self._carry_out(r, effects, seen.get("before"))
        return r

    # -- operators ------------------------------------------------------------------------------------
    def create(self, *, version: str, user: str, rollout_id: str | None = None, **options: Any) -> dict[str, Any]:
        rel = self.store.release(version)
        if rel is None:
            raise ConfigError(f"no published kiosk release {version} (kiosk-release publish first)", field="version")
        now = self.clock()
        r = RO.new_rollout(rollout_id or f"r-{uuid.uuid4().hex[:10]}",
                           {"version": version, "url": f"{self.base_url}/kiosk/{version}",
                            "manifest_sha256": rel["manifest_sha256"]},
                           created_by=user, now=now, **options)
        r = RO.plan(r, self._fleet(), self._groups())
        self.store.create(r)
        self.audit(user, "rollout_create", r["id"], "ok", {"version": version, "kiosks": len(r["kiosks"]),
                                                               "waves": r["wave_count"]})
        online = self._online(fresh=True) if self.leads() else None  # None: the lease holder sends
        return self._mutate(r["id"], lambda cur: self._first(cur, now, online))

    @staticmethod
    def _first(r: dict[str, Any], now: float, online: set[str] | None) -> tuple[dict[str, Any], list]:
        if any(k["state"] != "pending" for k in r["kiosks"].values()):
            return r, []  # someone else already started it
        return RO.tick(r, now, online)

    def action(self, rollout_id: str, action: str, user: str, reason: str = "") -> dict[str, Any]:
        now = self.clock()
        online = self._online(fresh=True) if action in ("approve", "resume", "retry", "advance") else set()
        if not self.leads():
            online = None  # decided here, sent by the lease holder's next tick (an abort's roll-backs: at once)
        decide = {
            "approve": lambda r: RO.approve(r, now, online),
            "pause": lambda r: (RO.pause(r, reason), []),
            "resume": lambda r: RO.resume(r, now, online),
            "abort": lambda r: RO.abort(r, reason, now),
            "retry": lambda r: RO.retry_failed(r, now, online),
            "advance": lambda r: RO.tick(r, now, online),
        }.get(action)
        if decide is None:
            raise RR.Refused("unknown_action", f"unknown roll-out action {action!r}", field="action",
                             rollout_action=action)
        try:
            r = self._mutate(rollout_id, decide)
        except RR.Refused as exc:
            # A code and its parameters, worded in the reader's language by the console.
            self.audit(user, f"rollout_{action}", rollout_id, f"refused: {exc.code}", exc.params)
            raise
        # Keys the console words: the status as a roll-out status, the operator's reason as a note.
        self.audit(user, f"rollout_{action}", rollout_id, "ok", {"rollout_status": r["status"], "wave": r["wave"],
                                                                   **({"note": reason} if reason else {})})
        return r

    # -- the loop -------------------------------------------------------------------------------------
    def start(self) -> None:
        self._thread = threading.Thread(target=self._run, name="rollouts", daemon=True)
        self._thread.start()
        if self.store.on_postgresql:  # beside the job: copying a large release must not hold its ticks up
            threading.Thread(target=self.share_releases, name="release-share", daemon=True).start()

    def share_releases(self) -> dict[str, list[str]]:
        """Put the releases this instance published before the fleet database kept release files
        into the database, so every instance serves them (``controller.release_local``)."""
        try:
            done = share_published(self.store, self.data_dir, self.clock())
        except Exception:  # noqa: BLE001 - logged; the releases stay served from this instance meanwhile
            log.exception("sharing this instance's published releases through the fleet database failed")
            return {"shared": [], "elsewhere": [], "refused": []}
        finally:
            self.store.reopen()  # this thread's connection, not needed again
        if done["elsewhere"]:
            log.info("releases whose files another instance has (it shares them when it starts): %s",
                     ", ".join(done["elsewhere"]))
        return done

    def stop(self) -> None:
        self._stop.set()
        self._inbox.put(None)
        if self._thread is not None:
            self._thread.join(5)

    def _run(self) -> None:
        next_tick = 0.0
        while not self._stop.is_set():
            try:
                item = self._inbox.get(timeout=self.interval)
            except queue.Empty:
                item = None
            try:
                if item is not None:
                    self._state(*item)
                if self.clock() >= next_tick and self.leads():
                    next_tick = self.clock() + self.interval
                    online = self._online()
                    for rid in self.store.active_ids():
                        self._mutate(rid, lambda r, online=online: RO.tick(r, self.clock(), online))
            except Exception as exc:  # noqa: BLE001 - the job must outlive one bad decision; it is logged
                log.exception("roll-out job step failed")
                if sql_dialect.connection_lost(exc):  # PostgreSQL restarted: open new connections next step
                    self.store.reopen()
                    self._ro.conn = None

    def _state(self, kiosk_id: str, st: updates.UpdateState, now: float) -> None:
        self.metrics["states_received"] += 1
        if not st.rollout:
            return
        if self.store.get(st.rollout) is None:
            return
        # Several instances share the kiosks' messages: any of them records a kiosk's state, only
        # the singleton-jobs lease holder sends (the holder's next tick sends what this opened).
        online = self._online() if self.leads() else None
        self._mutate(st.rollout, lambda r: RO.on_update_state(r, kiosk_id, st, now, online))


def for_controller(ctl: Any, *, base_url: str, clock: Callable[[], float] | None = None,
                   interval: float = 1.0) -> RolloutJob:
    """The job inside a running Controller: listens to its update/state and sends through it."""
    job = RolloutJob(ctl.config.data_dir, RolloutStore(FleetDb.from_config(ctl.config)), send=ctl.send_command,
                     audit=ctl.audit, base_url=base_url, clock=clock or ctl.clock, interval=interval,
                     time_zone=getattr(ctl.config, "time_zone", "Asia/Shanghai"),
                     download_rate=getattr(ctl.config, "release_download_rate", 0.0),
                     download_rate_per_kiosk=getattr(ctl.config, "release_download_rate_per_kiosk", 0.0),
                     leads=lambda: ctl.lease.holder)
    ctl.update_listeners.append(job.on_update_state)
    return job
