"""Roll-outs on the console's live stream: a watcher thread publishes each roll-out change as a
``rollout`` event on the console's SSE hub (:class:`controller.web.live.Hub`).

It polls the roll-out store's revisions (one small query), so a change made anywhere shows: the
controller's roll-out job, kioskctl in another process, an operator's button. For each roll-out
whose revision moved it publishes ``{"id", "status", "wave", "reason", "reason_text", "progress": [per
wave], "kiosks": {kiosk_id: {"wave", "state", "reason", "reason_text"}}}`` with only the kiosks that
changed since the last frame (a reason is its code and params; ``reason_text`` is it in each console
language, controller/web/rollout_words.py, since one stream serves pages of every language) (the page replaces those rows and the wave counts; a browser that falls behind gets the
hub's ``reload``).
"""

from __future__ import annotations

import logging
import threading
from typing import Any

from controller import rollouts as RO
from controller.rollout_store import RolloutStore
from controller.web import rollout_words

log = logging.getLogger(__name__)

MAX_KIOSKS = 500  # per frame: a bigger change (a wave of thousands opening) sends the rest next rounds


class RolloutWatch:
    def __init__(self, store: RolloutStore, hub: Any, *, interval: float = 0.5, max_kiosks: int = MAX_KIOSKS) -> None:
        self.store = store
        self.max_kiosks = max_kiosks
        self.hub = hub
        self.interval = interval
        self.errors = 0
        self._revs: dict[str, int] | None = None
        self._kiosks: dict[str, dict[str, dict[str, Any]]] = {}
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def step(self) -> int:
        """Publish what changed since the last step; returns how many frames were published."""
        revs = self.store.revisions()
        if self._revs is None:  # the first look: what pages already show is not news
            self._revs = revs
            return 0
        n = 0
        for rid, rev in sorted(revs.items()):
            if self._revs.get(rid) == rev:
                continue
            r = self.store.get(rid)
            if r is None:
                continue
            seen = self._kiosks.setdefault(rid, {})
            changed = {kid: rollout_words.frame_kiosk(k) for kid, k in sorted(r["kiosks"].items()) if seen.get(kid) != k}
            some = dict(list(changed.items())[:self.max_kiosks])
            for kid in some:
                seen[kid] = r["kiosks"][kid]
            self.hub.publish("rollout", {"id": rid, "status": r["status"], "wave": r["wave"], "reason": r["reason"],
                                         "reason_text": rollout_words.every_language(r["reason"]),
                                         "progress": RO.progress(r), "kiosks": some,
                                         "budget_text": rollout_words.budget_every_language(RO.budget(r))})
            n += 1
            # More than one frame's worth: leave the revision unseen so the next round sends the rest.
            self._revs[rid] = rev if len(some) == len(changed) else -1
        return n

    def _prime(self) -> None:
        """Remember each roll-out's kiosks as they are now, so the first change sends only itself."""
        for rid in self.store.active_ids():
            r = self.store.get(rid)
            if r is not None:
                self._kiosks[rid] = r["kiosks"]

    def run(self) -> None:
        while not self._stop.wait(self.interval):
            try:
                self.step()
            except Exception:  # noqa: BLE001 - a busy or migrating store: try again next round
                self.errors += 1
                log.exception("roll-out watch failed")

    def start(self) -> None:
        self._prime()
        self.step()
        self._thread = threading.Thread(target=self.run, name="rollout-watch", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(5)


def attach(console: Any, job: Any) -> RolloutWatch:
    """Roll-outs in a running console (``controller.web.app.Console``): live ``rollout`` frames on
    its stream, and their series on its ``/metrics``. Returns the started watch (stop it at exit)."""
    from controller.web.rollout_api import render_metrics

    console.extra_metrics.append(lambda: render_metrics(job))
    watch = RolloutWatch(job.store, console.hub)
    watch.start()
    return watch
