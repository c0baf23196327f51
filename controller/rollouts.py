"""Staged roll-outs of a kiosk release: pure decisions, ``(rollout, input, now) -> (rollout, [effects])``.

A roll-out targets the fleet, sites or groups. :func:`plan` picks the kiosks that are online and
on an older release, puts ``canary`` of them in wave 0 and splits the rest into waves by
cumulative percentage. Each wave's kiosks get ``cmd/update`` (effect ``("update", kiosk_id)``),
at most ``max_in_flight`` at a time and only inside the maintenance window (local time of the
fleet's ``time_zone``). A kiosk counts as succeeded only on ``committed`` (its health commit,
never on ``installed`` or ``switched``: hawkBit #3185); one silent past ``timeout_s`` counts as
``timed_out`` (hawkBit #693). The error threshold is a number of kiosks fixed by the wave's size:
as soon as the wave's failures reach ``error_threshold`` x the kiosks of the wave (rounded up,
at least ``error_min``), the roll-out pauses at once, with the reason, and nothing more is sent.
Across all waves, the failure budget (``failure_budget`` x the kiosks the roll-out targets, rounded
down, at least 1) bounds how many kiosks may ever run a release that fails: a kiosk counts against
it from the moment its ``cmd/update`` is sent (it may switch to the release before anything is
known) until it commits, and for good once it fails. Starts are paced so failed plus in-flight
kiosks never exceed the budget (and never more than ``max_in_flight`` at once), and the roll-out
pauses as soon as the failures fill it, so the kiosks that ran a failing release stay within the
budget however the waves are sized (issue 15: at most 0.5 % of the fleet). A finished wave whose
successes reach ``success_threshold`` opens the next (after approval when ``approval`` is set).
Operators resume (the failures so far are accepted: the wave's threshold and the budget count
again from there), abort (kiosks on trial get ``("rollback", kiosk_id)``) and retry the failed only.

No I/O here: :mod:`controller.rollout_store` keeps the state and makes the start of a wave happen
exactly once; :mod:`controller.rollout_job` carries out the effects.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import math
import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from contract import updates
from contract.release import parse_version
from controller import rollout_reasons as RR
from foundation.errors import ConfigError, KioskError

STATUSES = ("running", "awaiting_approval", "paused", "completed", "aborted")
OPEN_KIOSK = ("sent", "downloading", "installed", "switched", "deferred")
FAILED_KIOSK = ("failed", "rolled_back", "timed_out")
ON_TRIAL = ("switched",)
KIOSK_STATES = ("pending", "sent", *updates.STATES, "timed_out", "skipped")
# How far one update has gone on a kiosk. Several controller instances share the kiosks' messages,
# so one kiosk's update/state words can be handled out of order (``committed`` by one instance
# before ``switched`` by the other): a word behind the recorded one is a late copy, not news.
PROGRESS = {"sent": 0, "downloading": 1, "installed": 2, "deferred": 3, "switched": 4,
            **dict.fromkeys(updates.FINAL, 5)}
_HHMM = re.compile(r"^([01][0-9]|2[0-3]):([0-5][0-9])$")
Effect = tuple[str, str]
# The share of a roll-out's kiosks that may run a release that fails before it pauses: the fleet
# goal of issue 15 (at most 0.5 % of the fleet runs a failing release), met in the worst case.
FAILURE_BUDGET = 0.005


@dataclass(frozen=True)
class Window:
    start: str = "02:00"
    end: str = "05:00"
    time_zone: str = "Asia/Shanghai"

    def check(self) -> None:
        for name in ("start", "end"):
            if not _HHMM.match(getattr(self, name)):
                raise ConfigError(f"must be HH:MM, got {getattr(self, name)!r}", field=f"window.{name}")
        try:
            ZoneInfo(self.time_zone)
        except (ZoneInfoNotFoundError, ValueError):
            raise ConfigError(f"unknown time zone {self.time_zone!r}", field="window.time_zone") from None

    def contains(self, now: float) -> bool:
        local = dt.datetime.fromtimestamp(now, ZoneInfo(self.time_zone))
        minute = local.hour * 60 + local.minute
        a, b = (int(x[:2]) * 60 + int(x[3:]) for x in (self.start, self.end))
        return a <= minute < b if a <= b else (minute >= a or minute < b)  # 22:00-04:00 spans midnight


def _copy(r: dict[str, Any]) -> dict[str, Any]:
    """A copy to decide on: the record and each kiosk's entry (the only parts decisions change);
    a deep copy of a 1,000-kiosk roll-out on every kiosk's state cost more than the decision."""
    return {**r, "kiosks": {kid: dict(k) for kid, k in r["kiosks"].items()}}


def new_rollout(rollout_id: str, release: dict[str, Any], *, created_by: str, now: float,
                sites: Sequence[str] = (), groups: Sequence[str] = (), canary: int = 1,
                waves: Sequence[float] = (10, 50, 100),
                approval: bool = False, window: Window | None = None, success_threshold: float = 0.95,
                error_threshold: float = 0.05, error_min: int = 1, timeout_s: float = 3600.0, max_in_flight: int = 50,
                failure_budget: float = FAILURE_BUDGET) -> dict[str, Any]:
    """A roll-out record (not yet planned); raises ConfigError naming the bad field."""
    if not updates.ROLLOUT_ID.match(rollout_id):
        raise ConfigError(f"must be 1-64 letters, digits, _ or -, got {rollout_id!r}", field="id")
    waves = [float(w) for w in waves]
    if not waves or any(not 0 < w <= 100 for w in waves) or waves != sorted(waves) or waves[-1] != 100:
        raise ConfigError(f"must be rising cumulative percentages ending at 100, got {waves}", field="waves")
    if canary < 0:
        raise ConfigError(f"must be 0 or more, got {canary}", field="canary")
    if error_min < 1:
        raise ConfigError(f"must be 1 or more, got {error_min}", field="error_min")
    for name, value in (("success_threshold", success_threshold), ("error_threshold", error_threshold),
                        ("failure_budget", failure_budget)):
        if not 0 < value <= 1:
            raise ConfigError(f"must be a fraction in (0, 1], got {value}", field=name)
    if timeout_s <= 0 or max_in_flight < 1:
        raise ConfigError("timeout_s must be > 0 and max_in_flight >= 1", field="timeout_s")
    if window is not None:
        window.check()
    return {"id": rollout_id, "version": release["version"], "url": release["url"],
            "manifest_sha256": release["manifest_sha256"], "created_by": created_by, "created_at": now,
            "sites": list(sites), "groups": list(groups), "canary": canary, "waves": waves, "approval": approval,
            "window": window.__dict__ if window else None, "success_threshold": success_threshold,
            "error_threshold": error_threshold, "error_min": error_min, "timeout_s": timeout_s, "max_in_flight": max_in_flight,
            "failure_budget": failure_budget, "accepted": {},
            "status": "running", "wave": 0, "reason": {}, "wave_count": 0, "kiosks": {}, "updated_at": now}


def _older(kiosk: dict[str, Any], version: str) -> bool:
    running = (kiosk.get("versions") or {}).get("release", "")
    try:
        return parse_version(running) < parse_version(version)
    except (KioskError, ValueError, TypeError):
        return False  # a kiosk that does not say what it runs is not updated blindly


def eligible(kiosk: dict[str, Any], r: dict[str, Any]) -> bool:
    return kiosk.get("state") == "online" and _older(kiosk, r["version"])


def plan(r: dict[str, Any], fleet: list[dict[str, Any]], groups: dict[str, set[str]]) -> dict[str, Any]:
    """Assign every targeted, eligible kiosk to a wave. ``fleet``: kiosk summaries (kiosk_id, state,
    site, versions); ``groups``: group name -> kiosk ids."""
    r = _copy(r)
    in_groups = set().union(*(groups.get(g, set()) for g in r["groups"])) if r["groups"] else None
    chosen = [k["kiosk_id"] for k in fleet
              if (not r["sites"] or k.get("site") in r["sites"]) and (in_groups is None or k["kiosk_id"] in in_groups)
              and eligible(k, r)]
    # A stable spread: the same roll-out always picks the same order; sites mix across waves.
    chosen.sort(key=lambda kid: hashlib.sha256(f"{r['id']}/{kid}".encode()).hexdigest())
    canary, rest = chosen[:r["canary"]], chosen[r["canary"]:]
    waves: list[list[str]] = [canary] if canary else []
    done = 0
    for pct in r["waves"]:
        upto = round(len(rest) * pct / 100)
        if upto > done:
            waves.append(rest[done:upto])
            done = upto
    running = {k["kiosk_id"]: str((k.get("versions") or {}).get("release", "")) for k in fleet}
    r["kiosks"] = {kid: {"wave": n, "state": "pending", "reason": {}, "from_version": running[kid], "since": 0.0}
                   for n, members in enumerate(waves) for kid in members}
    r["wave_count"] = len(waves)
    if not waves:
        r["status"], r["reason"] = "completed", RR.make("no_targets")
    return r


def wave_counts(r: dict[str, Any], wave: int) -> dict[str, int]:
    out = {"total": 0, "pending": 0, "open": 0, "succeeded": 0, "failed": 0, "skipped": 0}
    for k in r["kiosks"].values():
        if k["wave"] != wave:
            continue
        out["total"] += 1
        s = k["state"]
        key = ("succeeded" if s == "committed" else "failed" if s in FAILED_KIOSK else "open" if s in OPEN_KIOSK
               else "skipped" if s == "skipped" else "pending")
        out[key] += 1
    return out


def _send(r: dict[str, Any], now: float, online: set[str] | None) -> list[Effect]:
    """Send the current wave's pending kiosks, up to ``max_in_flight`` open at once, in the window.
    ``online`` None: this caller may not send (a controller instance without the singleton-jobs
    lease records a kiosk's state; the lease holder's next tick sends)."""
    if online is None or r["status"] != "running" or (r["window"] and not Window(**r["window"]).contains(now)):
        return []
    c = wave_counts(r, r["wave"])
    room = r["max_in_flight"] - c["open"]
    b = budget(r)
    if b is not None:
        room = min(room, b["limit"] - b["at_risk"])
    out: list[Effect] = []
    for kid, k in sorted(r["kiosks"].items()):
        if room <= 0:
            break
        if k["wave"] == r["wave"] and k["state"] == "pending":
            if kid not in online:
                k.update(state="skipped", reason=RR.make("offline"), since=now)
                continue
            k.update(state="sent", reason={}, since=now)
            out.append(("update", kid))
            room -= 1
    return out


def error_limit(r: dict[str, Any], counted: int) -> int:
    """How many failed kiosks pause a wave of ``counted`` kiosks (offline-skipped ones not counted).

    A share of the whole wave, decided before it starts, not of the kiosks finished so far: one
    early failure among the first few kiosks (a flaky link, a kiosk unplugged mid-update) does not
    pause a wave of hundreds, and the operator knows in advance how many failures will. The
    minimum count keeps a small wave from pausing on a single flaky kiosk when that is wanted.
    """
    return max(int(r.get("error_min", 1)), math.ceil(r["error_threshold"] * counted - 1e-9))


def budget(r: dict[str, Any]) -> dict[str, Any] | None:
    """The roll-out's failure budget now: ``limit`` (kiosks), ``failed`` (failures counted against
    it: those the operator accepted by resuming are not), ``at_risk`` (``failed`` plus the kiosks
    sent the release and not committed yet: each may be running it), ``targets``, ``share``.
    ``None`` for a roll-out created before budgets (it has only the per-wave threshold)."""
    share = r.get("failure_budget")
    if share is None:
        return None
    targets = len(r["kiosks"])
    failed = sum(k["state"] in FAILED_KIOSK for k in r["kiosks"].values())
    in_flight = sum(k["state"] in OPEN_KIOSK for k in r["kiosks"].values())
    counted = max(0, failed - int((r.get("accepted") or {}).get("failed", 0)))
    # Rounded down: the budget never allows more than its share; at least one kiosk, or nothing could start.
    limit = max(1, math.floor(share * targets + 1e-9))
    return {"limit": limit, "failed": counted, "at_risk": counted + in_flight, "targets": targets, "share": share}


def _wave_failed(r: dict[str, Any], c: dict[str, int]) -> int:
    """The current wave's failures the operator has not accepted (by resuming after a pause)."""
    accepted = r.get("accepted") or {}
    return max(0, c["failed"] - int(accepted.get("wave_failed", 0))) if accepted.get("wave") == r["wave"] else c["failed"]


def _accept(r: dict[str, Any]) -> None:
    """The operator goes on: the failures so far no longer count against the budget or the wave."""
    c = wave_counts(r, r["wave"])
    r["accepted"] = {"wave": r["wave"], "wave_failed": c["failed"],
                     "failed": sum(k["state"] in FAILED_KIOSK for k in r["kiosks"].values())}


def _evaluate(r: dict[str, Any], now: float, online: set[str] | None) -> list[Effect]:
    """Pause on errors at once; open the next wave when this one has finished well enough."""
    if r["status"] != "running":
        return []
    c = wave_counts(r, r["wave"])
    counted = c["total"] - c["skipped"]
    limit = error_limit(r, counted)
    if _wave_failed(r, c) >= limit:
        r["status"] = "paused"
        r["reason"] = RR.make("error_threshold", wave=r["wave"], failed=_wave_failed(r, c), counted=counted,
                              threshold=r["error_threshold"], min=int(r.get("error_min", 1)), limit=limit)
        return []
    b = budget(r)
    if b is not None and b["failed"] >= b["limit"]:
        r["status"] = "paused"
        r["reason"] = RR.make("failure_budget", failed=b["failed"], targets=b["targets"], budget=b["share"],
                              limit=b["limit"])
        return []
    if c["pending"] or c["open"]:
        return _send(r, now, online)
    if counted and c["succeeded"] / counted < r["success_threshold"]:
        r["status"] = "paused"
        r["reason"] = RR.make("success_threshold", wave=r["wave"], succeeded=c["succeeded"], counted=counted,
                              threshold=r["success_threshold"])
        return []
    if r["wave"] + 1 >= r["wave_count"]:
        r["status"], r["reason"] = "completed", {}
        return []
    if r["approval"]:
        r["status"], r["reason"] = "awaiting_approval", RR.make("awaiting_approval", wave=r["wave"] + 1)
        return []
    return start_next_wave(r, now, online)


def start_next_wave(r: dict[str, Any], now: float, online: set[str] | None) -> list[Effect]:
    """Open wave ``wave + 1``. The store calls this only after it won the conditional update."""
    r["wave"] += 1
    r["status"], r["reason"] = "running", {}
    return _send(r, now, online)


def on_update_state(r: dict[str, Any], kiosk_id: str, st: updates.UpdateState, now: float,
                    online: set[str] | None) -> tuple[dict[str, Any], list[Effect]]:
    """A kiosk's ``update/state`` for this roll-out's release (``online`` None: decide, send nothing)."""
    k = r["kiosks"].get(kiosk_id)
    if k is None or st.version != r["version"] or k["state"] in ("pending", "skipped", "timed_out"):
        return r, []
    if k["state"] in ("committed", "failed", "rolled_back") and k["state"] == st.state:
        return r, []
    if PROGRESS[st.state] < PROGRESS[k["state"]]:
        return r, []  # a late word of this update (see PROGRESS); a final one may still follow another
    r = _copy(r)
    k = r["kiosks"][kiosk_id]
    k.update(state=st.state, reason=RR.from_kiosk(st.reason), since=now if st.state != k["state"] else k["since"])
    r["updated_at"] = now
    return r, _evaluate(r, now, online)


def tick(r: dict[str, Any], now: float, online: set[str] | None) -> tuple[dict[str, Any], list[Effect]]:
    """Time passes: silent kiosks time out, the window opens, waves finish."""
    if r["status"] != "running":
        return r, []
    r = _copy(r)
    for k in r["kiosks"].values():
        if k["state"] in OPEN_KIOSK and now - k["since"] >= r["timeout_s"]:
            k.update(state="timed_out", reason=RR.make("timed_out", timeout=round(r["timeout_s"])), since=now)
    return r, _evaluate(r, now, online)


# -- operators ------------------------------------------------------------------------------------

def _need(r: dict[str, Any], action: str, *statuses: str) -> None:
    if r["status"] not in statuses:
        raise RR.Refused("not_in_status", f"cannot {action} a roll-out that is {r['status']}", field="status",
                         rollout_action=action, rollout_status=r["status"])


def approve(r: dict[str, Any], now: float, online: set[str] | None) -> tuple[dict[str, Any], list[Effect]]:
    _need(r, "approve", "awaiting_approval")
    r = _copy(r)
    return r, start_next_wave(r, now, online)


def pause(r: dict[str, Any], reason: str) -> dict[str, Any]:
    _need(r, "pause", "running", "awaiting_approval")
    return {**_copy(r), "status": "paused", "reason": RR.operator("paused_by_operator", reason)}


def resume(r: dict[str, Any], now: float, online: set[str] | None) -> tuple[dict[str, Any], list[Effect]]:
    """Go on where it stopped; a wave that paused on errors is taken as accepted by the operator."""
    _need(r, "resume", "paused")
    r = _copy(r)
    r["status"], r["reason"] = "running", {}
    _accept(r)
    c = wave_counts(r, r["wave"])
    if c["pending"] or c["open"]:
        return r, _send(r, now, online)
    if r["wave"] + 1 >= r["wave_count"]:
        r["status"] = "completed"
        return r, []
    return r, start_next_wave(r, now, online)


def abort(r: dict[str, Any], reason: str, now: float) -> tuple[dict[str, Any], list[Effect]]:
    """Stop for good; kiosks that switched but have not committed are told to roll back."""
    _need(r, "abort", "running", "awaiting_approval", "paused")
    r = _copy(r)
    r["status"], r["reason"] = "aborted", RR.operator("aborted_by_operator", reason)
    out: list[Effect] = []
    for kid, k in sorted(r["kiosks"].items()):
        if k["state"] in ON_TRIAL:
            out.append(("rollback", kid))
        elif k["state"] == "pending":
            k.update(state="skipped", reason=RR.make("rollout_aborted"), since=now)
    return r, out


def retry_failed(r: dict[str, Any], now: float, online: set[str] | None) -> tuple[dict[str, Any], list[Effect]]:
    """Send again to the kiosks that failed or timed out (a rolled-back kiosk marked the release
    bad: it would refuse it, so it is not retried)."""
    _need(r, "retry", "running", "paused")
    r = _copy(r)
    n = 0
    for k in r["kiosks"].values():
        if k["wave"] <= r["wave"] and k["state"] in ("failed", "timed_out"):
            k.update(state="pending", reason=RR.make("retry"), since=now)
            k["wave"] = r["wave"]
            n += 1
    if not n:
        raise RR.Refused("nothing_to_retry", "no failed or timed-out kiosk to retry", field="kiosks")
    _accept(r)  # what is still failed (rolled back) was seen by the operator who retried
    r["status"], r["reason"] = "running", {}
    return r, _send(r, now, online)


def public(r: dict[str, Any]) -> dict[str, Any]:
    """What the console, kioskctl and the REST API show of a roll-out: the record, its progress
    per wave and its failure budget now."""
    return {**r, "progress": progress(r), "budget": budget(r)}


def progress(r: dict[str, Any]) -> list[dict[str, Any]]:
    """Per wave: counts by outcome, for the console, kioskctl and the metrics."""
    return [{"wave": n, "canary": n == 0 and r["canary"] > 0, **wave_counts(r, n)} for n in range(r["wave_count"])]
