"""The soak's invariants (benchmarks/soak.py): each a named check over what the soak recorded and
what the controller stored; a failure names the seed, the time, the fault and the ids."""

from __future__ import annotations

import json
import sqlite3
import time
from collections import defaultdict
from typing import Any

from benchmarks.soak_faults import EXPECTED_ALARM, ONLINE_FAULTS

SAMPLE_STEP = 0.25
ONLINE_AGAIN = 30.0


def _result(failures: list[str], judged: int, notes: list[str] | None = None) -> dict[str, Any]:
    return {"ok": not failures, "failures": failures, "judged": judged, "notes": notes or []}


def _state_at(changes: list[tuple[float, str]], t: float) -> str:
    state = "unknown"
    for at, s in changes:
        if at > t:
            break
        state = s
    return state


def _first(changes: list[tuple[float, str]], after: float, pred) -> float | None:
    return next((at for at, s in changes if at >= after and pred(s)), None)


def _overlaps_global(soak, start: float, end: float) -> bool:
    return any(f.target in ("broker", "controller") and f.start <= end and (f.end or 1e18) >= start
               for f in soak.faults)


def _journal_depth(soak, kid: str) -> int:
    path = soak.work / kid / "agent-journal.sqlite3"
    try:
        conn = sqlite3.connect(f"file:{path}?mode=ro", uri=True, timeout=5)
        try:
            return conn.execute("SELECT COUNT(*) FROM outbox").fetchone()[0]
        finally:
            conn.close()
    except sqlite3.Error:
        return -1


def events_exactly_once(soak) -> dict[str, Any]:
    deadline = time.monotonic() + 60
    depths: dict[str, int] = {}
    while time.monotonic() < deadline:
        depths = {kid: _journal_depth(soak, kid) for kid in soak.ids}
        if not any(depths.values()):
            break
        time.sleep(0.5)  # waiting for the kiosks to flush; polled, bounded by the deadline
    failures = [f"seed {soak.seed}: kiosk {kid} still holds {d} journaled events at the end"
                for kid, d in depths.items() if d]
    conn = soak.store()
    seqs: dict[tuple[str, str], set[int]] = defaultdict(set)
    count = 0
    for kid, boot, seq in conn.execute("SELECT kiosk_id, boot_id, seq FROM events"):
        seqs[(kid, boot)].add(seq)
        count += 1
    conn.close()
    for (kid, boot), got in sorted(seqs.items()):
        missing = sorted(set(range(1, max(got) + 1)) - got)
        if missing:
            failures.append(f"seed {soak.seed}: kiosk {kid} boot {boot[:8]}: event seq {missing[:10]} never stored")
    return _result(failures, count, [f"{count} events stored from {len(seqs)} boots"])


def liveness(soak) -> tuple[dict[str, Any], dict[str, Any], dict[str, Any]]:
    offline_fail, online_fail, slow_fail, notes, slow_notes = [], [], [], [], []
    judged_off = judged_on = judged_slow = 0
    for f in soak.faults:
        if f.target in ("broker", "controller"):
            continue
        changes = soak.states.get(f.target, [])
        end = f.end or soak.now()
        if _state_at(changes, f.start) != "online":
            notes.append(f"{f.kind} {f.target} at {f.start:.1f} s not judged: not online when it began")
            continue
        where = f"seed {soak.seed}, t={f.start:.1f} s, fault {f.kind}, kiosk {f.target}"
        if f.kind in ONLINE_FAULTS:
            if _overlaps_global(soak, f.start - soak.bound, end + soak.bound):
                slow_notes.append(f"{f.kind} {f.target} at {f.start:.1f} s: staying online not judged, a "
                             "broker/controller fault overlaps")
                continue
            judged_slow += 1
            dropped = _first(changes, f.start, lambda s: s != "online")
            if dropped is not None and dropped <= end:
                slow_fail.append(f"{where}: {_state_at(changes, dropped)} at {dropped:.1f} s during the fault")
            continue
        off = _first(changes, f.start, lambda s: s == "offline")
        if _overlaps_global(soak, f.start - soak.bound, f.start + soak.bound):
            notes.append(f"{f.kind} {f.target} at {f.start:.1f} s: offline bound not judged, a broker/controller "
                         "fault overlaps")
        else:
            judged_off += 1
            if off is None or off - f.start > soak.bound + SAMPLE_STEP:
                took = "never" if off is None else f"after {off - f.start:.1f} s"
                offline_fail.append(f"{where}: offline {took}, bound {soak.bound:.1f} s")
        ret = f.back or f.end
        if not ret or _overlaps_global(soak, ret, ret + ONLINE_AGAIN) or any(
                g is not f and g.target == f.target and ret <= g.start <= ret + ONLINE_AGAIN for g in soak.faults):
            continue
        judged_on += 1
        back = _first(changes, max(ret, off or ret), lambda s: s == "online")
        if back is None or back - ret > ONLINE_AGAIN:
            took = "not at all" if back is None else f"after {back - ret:.1f} s"
            online_fail.append(f"{where}: online again {took} after the return at {ret:.1f} s")
    return (_result(offline_fail, judged_off, notes), _result(online_fail, judged_on),
            _result(slow_fail, judged_slow, slow_notes))


def commands_final(soak) -> dict[str, Any]:
    final = ("succeeded", "failed", "rejected", "expired", "timed_out")
    deadline = time.monotonic() + 60
    rows: dict[str, tuple] = {}
    while time.monotonic() < deadline:
        conn = soak.store()
        rows = {r[0]: r for r in conn.execute("SELECT id, kiosk_id, name, status, result FROM commands")}
        conn.close()
        if all(rows.get(cid, (0, 0, 0, ""))[3] in final for _, cid, _, _ in soak.commands):
            break
        time.sleep(0.5)  # commands still on their way; polled, bounded by the deadline
    conn = soak.store()
    boots = {(k, b) for k, b in conn.execute("SELECT DISTINCT kiosk_id, boot_id FROM events")}
    conn.close()
    failures = []
    statuses: dict[str, int] = defaultdict(int)
    for t, cid, kid, name in soak.commands:
        row = rows.get(cid)
        status = row[3] if row else "never_taken"
        statuses[status] += 1
        if status not in final:
            failures.append(f"seed {soak.seed}, t={t:.1f} s: command {cid} ({name} to {kid}) still {status}")
        elif row is not None and status == "succeeded" and name == "collect_diagnostics":
            boot = (json.loads(row[4] or "{}") or {}).get("boot_id")
            if (kid, boot) not in boots:
                failures.append(f"seed {soak.seed}, t={t:.1f} s: command {cid} succeeded with boot {boot} "
                                f"that kiosk {kid} never reported")
    return _result(failures, len(soak.commands), [", ".join(f"{k} {v}" for k, v in sorted(statuses.items()))])


def resources_flat(soak) -> dict[str, Any]:
    failures, notes = [], []
    for name, samples in soak.resources.items():
        by_pid: dict[int, list] = defaultdict(list)
        for s in samples:
            by_pid[s[3]].append(s)
        series = max(by_pid.values(), key=lambda v: v[-1][0] - v[0][0])
        if len(series) < 8:
            notes.append(f"{name}: too few samples of one process to judge")
            continue
        q = len(series) // 4
        first, last = series[:q], series[-q:]
        rss0, rss1 = (sum(s[1] for s in part) / len(part) for part in (first, last))
        fd0, fd1 = max(s[2] for s in first), max(s[2] for s in last)
        notes.append(f"{name} (pid {series[0][3]}, {series[-1][0] - series[0][0]:.0f} s): "
                     f"RSS {rss0:.1f} -> {rss1:.1f} MiB, fds {fd0} -> {fd1}")
        if rss1 > rss0 * 1.5 or fd1 - fd0 > 20:
            failures.append(f"seed {soak.seed}: {name} grew: RSS {rss0:.1f} -> {rss1:.1f} MiB, fds {fd0} -> {fd1}")
    return _result(failures, len(soak.resources), notes)


def _alarms(soak) -> list[tuple]:
    conn = soak.store()
    rows = conn.execute("SELECT id, kiosk_id, rule, subject, raised_at, cleared_at, acked_at FROM alarms").fetchall()
    conn.close()
    return rows


def alarms_follow_faults(soak) -> dict[str, Any]:
    """Every alarm raised lies in a fault's window (its kiosk's, or a broker/controller fault's),
    and is cleared (or acknowledged) within 30 s of the end of the last fault that explains it."""
    rows = _alarms(soak)
    failures = []
    for aid, kid, rule, subject, raised, cleared, acked in rows:
        t = raised - soak.wall0
        where = f"seed {soak.seed}, t={t:.1f} s: alarm {aid} {rule} {subject} on kiosk {kid}"
        causes = [f for f in soak.faults
                  if f.target in (kid, "broker", "controller") and f.start - 1 <= t <= (f.end or t) + ONLINE_AGAIN]
        if not causes:
            failures.append(f"{where} raised without a fault")
            continue
        done = min(x for x in (cleared, acked) if x is not None) - soak.wall0 if (cleared or acked) else None
        last = max((f.end or soak.now()) for f in causes)
        # Another fault of the same kiosk starting before the clear may hold the alarm up.
        later = [f for f in soak.faults if f.target in (kid, "broker", "controller") and last < f.start
                 and (done is None or f.start <= done)]
        if later:
            last = max(last, *((f.end or soak.now()) for f in later))
        if done is None:
            failures.append(f"{where} still open at the end (its fault ended at {last:.1f} s)")
        elif done - last > ONLINE_AGAIN:
            kinds = ", ".join(sorted({f.kind for f in causes}))
            failures.append(f"{where} cleared {done - last:.1f} s after its fault ({kinds}) ended at {last:.1f} s")
    return _result(failures, len(rows), [f"{len(rows)} alarms raised"])


def device_faults_alarmed(soak) -> dict[str, Any]:
    """Each device fault with a named alarm (paper low/out, cover open, the host power cycle, an
    unplugged or garbled printer) raised that alarm on its kiosk while it lasted."""
    rows = _alarms(soak)
    failures, notes = [], []
    judged = 0
    for f in soak.faults:
        rule = EXPECTED_ALARM.get(f.kind)
        if rule is None or not f.end:
            continue
        if _overlaps_global(soak, f.start - 1, f.end + 1):
            notes.append(f"{f.kind} {f.target} at {f.start:.1f} s not judged: a broker/controller fault overlaps")
            continue
        judged += 1
        # One alarm per kiosk and rule: one still open (acknowledged, say) from an earlier fault counts.
        if not any(kid == f.target and r == rule and (
                f.start - 1 <= raised - soak.wall0 <= f.end + ONLINE_AGAIN
                or (raised - soak.wall0 < f.start and (cleared is None or cleared - soak.wall0 >= f.start)))
                   for _, kid, r, _, raised, cleared, _ in rows):
            failures.append(f"seed {soak.seed}, t={f.start:.1f} s: fault {f.kind} on kiosk {f.target} "
                            f"(until {f.end:.1f} s) raised no {rule} alarm {f.note}".rstrip())
    return _result(failures, judged, notes)


def check_all(soak) -> dict[str, dict[str, Any]]:
    offline, online, slow = liveness(soak)
    return {"events_exactly_once": events_exactly_once(soak), "alarms_follow_faults": alarms_follow_faults(soak),
            "device_faults_alarmed": device_faults_alarmed(soak),
            "offline_within_bound": offline,
            "online_within_30s": online, "stays_online": slow, "commands_final": commands_final(soak),
            "resources_flat": resources_flat(soak)}


def recovery_times(soak) -> list[tuple[Any, float]]:
    """For each broker/controller fault that ended: (fault, seconds until the controller saw every
    kiosk online again after it; inf if some kiosk never came back)."""
    out = []
    for f in soak.faults:
        if f.target not in ("broker", "controller") or not f.end:
            continue
        back = []
        for kid in soak.ids:
            changes = soak.states.get(kid, [])
            t = f.end
            while _state_at(changes, t) != "online" and t < soak.now():
                nxt = _first(changes, t + 1e-6, lambda s: True)
                if nxt is None:
                    t = float("inf")
                    break
                t = nxt
            back.append(t - f.end)
        out.append((f, max(back, default=0.0)))
    return out


def recovery(soak) -> list[str]:
    """For each broker/controller fault: how long until the controller saw every kiosk online again."""
    return [f"{f.kind} at {f.start:.1f} s (down {f.end - f.start:.1f} s): every kiosk online in the "
            f"controller {worst:.1f} s after it was back" if worst != float("inf")
            else f"{f.kind} at {f.start:.1f} s: some kiosk never came back online"
            for f, worst in recovery_times(soak)]
