"""District reports for a period and site: service usage, waits, satisfaction, feedback, device
failures and repair times, availability per kiosk; as JSON, CSV and chart images.

Figures come from the service backend's ``svc_*`` tables and the controller's ``alarms`` table;
a table that does not exist (or a figure the backend does not record) yields an empty section
with a note, never an invented number. No resident data is read: ratings and feedback are counts.
"""

from __future__ import annotations

import csv
import io
import json
import math
import statistics
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from datetime import date, timedelta
from typing import Any

from controller.fleet_clock import FleetClock
from controller.web import charts
from controller.web.console_reads import columns, fetch, tables

MAX_DAYS = 366
SERVICE_TABLES = {  # service id -> (table, time column)
    "queue_ticket": ("svc_tickets", "issued_at"),
    "appointment": ("svc_appointments", "booked_at"),
    "certificate": ("svc_certificates", "issued_at"),
    "volunteer": ("svc_volunteer_sessions", "started"),
    "feedback": ("svc_feedback", "created"),
    "rating": ("svc_ratings", "created"),
}


class PeriodError(ValueError):
    """The period or site of a report is not valid; the message names the parameter."""


@dataclass(frozen=True)
class Period:
    """Whole days in the fleet's time zone (``clock``), from ``start`` to ``end`` inclusive."""

    start: date
    end: date  # inclusive
    site: str = ""
    clock: FleetClock = field(default_factory=FleetClock, compare=False)

    @property
    def t0(self) -> float:
        return self.clock.start_of(self.start)

    @property
    def t1(self) -> float:
        return self.clock.start_of(self.end + timedelta(days=1))

    def days(self) -> list[date]:
        return [self.start + timedelta(days=i) for i in range((self.end - self.start).days + 1)]


def parse_period(params: dict[str, str], now: float, clock: FleetClock | None = None) -> Period:
    clock = clock or FleetClock()
    today = clock.day(now)

    def day(name: str, default: date) -> date:
        raw = params.get(name) or ""
        if not raw:
            return default
        try:
            return date.fromisoformat(raw)
        except ValueError:
            raise PeriodError(f"{name} must be a date YYYY-MM-DD, got {raw!r}") from None

    end = day("to", today)
    start = day("from", end - timedelta(days=6))
    if start > end:
        raise PeriodError(f"from ({start}) is after to ({end})")
    if (end - start).days + 1 > MAX_DAYS:
        raise PeriodError(f"the period is longer than {MAX_DAYS} days")
    site = (params.get("site") or "").strip()
    if len(site) > 64:
        raise PeriodError("site must be at most 64 characters")
    return Period(start, end, site, clock)


def _kiosk_filter(period: Period, alias: str = "t") -> tuple[str, list[Any]]:
    if not period.site:
        return "", []
    return f" AND {alias}.kiosk_id IN (SELECT kiosk_id FROM kiosks WHERE site = ?)", [period.site]


def usage(data_dir, period: Period) -> list[dict[str, Any]]:
    have = tables(data_dir)
    out = []
    cond, args = _kiosk_filter(period)
    for service, (table, col) in SERVICE_TABLES.items():
        if table not in have:
            continue
        rows = fetch(data_dir, f"SELECT COUNT(*) AS n FROM {table} t WHERE {col} >= ? AND {col} < ?{cond}",
                     [period.t0, period.t1, *args])
        out.append({"service": service, "count": rows[0]["n"] if rows else 0})
    return out


def percentile(sorted_vals: list[float], q: float) -> float:
    """Nearest-rank percentile of sorted values (p90 of 10 waits is the 9th): a wait someone had."""
    return sorted_vals[max(0, math.ceil(q * len(sorted_vals)) - 1)]


def _wait_row(key: dict[str, str], vals: list[float]) -> dict[str, Any]:
    vals.sort()
    return {**key, "count": len(vals), "median": round(statistics.median(vals), 1),
            "mean": round(sum(vals) / len(vals), 1), "p90": round(percentile(vals, 0.9), 1)}


def waits(data_dir, period: Period) -> dict[str, Any]:
    """Minutes from issued_at to called_at of the tickets issued in the period and called, per site and
    counter (the service), plus an ``all`` row per counter; tickets never called are not guessed."""
    if "svc_tickets" not in tables(data_dir):
        return {"note": "no_tickets", "items": []}  # notes are ids; the console says them in its language
    if "called_at" not in columns(data_dir, "svc_tickets"):
        return {"note": "no_called_at", "items": []}
    cond, args = _kiosk_filter(period)
    rows = fetch(data_dir, "SELECT t.counter, COALESCE(k.site, '') AS site, (t.called_at - t.issued_at) / 60.0 "
                           "AS wait FROM svc_tickets t LEFT JOIN kiosks k ON k.kiosk_id = t.kiosk_id "
                           f"WHERE t.issued_at >= ? AND t.issued_at < ? AND t.called_at IS NOT NULL{cond}",
                 [period.t0, period.t1, *args])
    if not rows:
        return {"note": "none_called", "items": []}
    by: dict[tuple[str, str], list[float]] = defaultdict(list)
    for r in rows:
        by[(r["counter"], r["site"])].append(max(0.0, r["wait"]))
    items = []
    for counter in sorted({c for c, _ in by}):
        sites = sorted(s for c, s in by if c == counter)
        items.append(_wait_row({"counter": counter, "site": ""},
                               [w for s in sites for w in by[(counter, s)]]))  # site "" = all sites
        if len(sites) > 1:
            items += [_wait_row({"counter": counter, "site": s}, by[(counter, s)]) for s in sites]
    return {"note": "", "items": items}


def satisfaction(data_dir, period: Period) -> dict[str, Any]:
    """Index 0-100 = mean stars (1-5) scaled; trend per day; tag counts as feedback topics."""
    cond, args = _kiosk_filter(period)
    rows = fetch(data_dir, f"SELECT service, stars, tags, created FROM svc_ratings t WHERE created >= ? "
                           f"AND created < ?{cond}", [period.t0, period.t1, *args])
    if not rows:
        return {"index": None, "ratings": 0, "trend": [], "by_service": [], "tags": []}
    per_day: dict[str, list[int]] = defaultdict(list)
    per_service: dict[str, list[int]] = defaultdict(list)
    tags: Counter = Counter()
    for r in rows:
        per_day[period.clock.day(r["created"]).isoformat()].append(r["stars"])
        per_service[r["service"]].append(r["stars"])
        try:
            tags.update(t for t in json.loads(r["tags"]) if isinstance(t, str))
        except (json.JSONDecodeError, TypeError):
            pass
    idx = lambda xs: round((sum(xs) / len(xs) - 1) / 4 * 100, 1)  # noqa: E731 - 1 star = 0, 5 stars = 100
    return {"index": idx([r["stars"] for r in rows]), "ratings": len(rows),
            "trend": [{"day": d.isoformat(), "index": idx(per_day[d.isoformat()]) if per_day[d.isoformat()] else None,
                       "ratings": len(per_day[d.isoformat()])} for d in period.days()],
            "by_service": [{"service": s, "index": idx(v), "ratings": len(v)} for s, v in sorted(per_service.items())],
            "tags": [{"topic": t, "count": n} for t, n in tags.most_common(15)]}


def feedback_topics(data_dir, period: Period) -> list[dict[str, Any]]:
    cond, args = _kiosk_filter(period)
    rows = fetch(data_dir, "SELECT category, urgency, COUNT(*) AS n FROM svc_feedback t WHERE created >= ? AND "
                           f"created < ?{cond} GROUP BY category, urgency ORDER BY n DESC", [period.t0, period.t1, *args])
    return [{"topic": r["category"], "urgency": r["urgency"], "count": r["n"]} for r in rows]


def _alarm_rows(data_dir, period: Period) -> list[dict[str, Any]]:
    cond, args = _kiosk_filter(period)
    return fetch(data_dir, "SELECT kiosk_id, rule, subject, raised_at, cleared_at FROM alarms t WHERE raised_at < ? "
                           f"AND (cleared_at IS NULL OR cleared_at >= ?){cond}", [period.t1, period.t0, *args])


def kiosk_ids(data_dir, period: Period) -> list[str]:
    if period.site:
        return [r["kiosk_id"] for r in fetch(data_dir, "SELECT kiosk_id FROM kiosks WHERE site=?", [period.site])]
    return [r["kiosk_id"] for r in fetch(data_dir, "SELECT kiosk_id FROM kiosks")]


def fault_episodes(alarms: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """One episode per device fault: the device alarms of one kiosk and device whose open intervals
    overlap are one fault (a printer's ``paper_out`` next to an older controller's ``device_error``
    for the same paper, or a cover opened while the paper was out, is one visit by a technician).
    Each episode: kiosk_id, device, start, end (None while still open)."""
    by: dict[tuple[str, str], list[dict[str, Any]]] = defaultdict(list)
    for a in alarms:
        if a["rule"] != "kiosk_offline" and a["subject"]:
            by[(a["kiosk_id"], a["subject"])].append(a)
    out: list[dict[str, Any]] = []
    for (kiosk_id, device), rows in sorted(by.items()):
        cur: dict[str, Any] | None = None
        for a in sorted(rows, key=lambda r: r["raised_at"]):
            end = a["cleared_at"]
            if cur is not None and (cur["end"] is None or a["raised_at"] <= cur["end"]):
                cur["end"] = None if cur["end"] is None or end is None else max(cur["end"], end)
                continue
            cur = {"kiosk_id": kiosk_id, "device": device, "start": a["raised_at"], "end": end}
            out.append(cur)
    return out


def failures(data_dir, period: Period, alarms: list[dict[str, Any]], n_kiosks: int, now: float) -> list[dict[str, Any]]:
    """Device faults that began in the period, per device: count, rate per 100 kiosk-days and mean
    time to repair in minutes (``mttr_minutes``), counted in fault episodes, not alarms."""
    by: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for ep in fault_episodes(alarms):
        if period.t0 <= ep["start"] < period.t1:
            by[ep["device"]].append(ep)
    kiosk_days = max(1, n_kiosks) * len(period.days())
    out = []
    for device, eps in sorted(by.items()):
        repaired = [ep["end"] - ep["start"] for ep in eps if ep["end"] is not None]
        out.append({"device": device, "failures": len(eps), "per_100_kiosk_days": round(100 * len(eps) / kiosk_days, 2),
                    "mttr_minutes": round(sum(repaired) / len(repaired) / 60, 1) if repaired else None,
                    "mttr_unit": "min", "open": len(eps) - len(repaired)})
    return out


def availability(period: Period, alarms: list[dict[str, Any]], ids: list[str], now: float) -> list[dict[str, Any]]:
    """Share of the period each kiosk was not offline (kiosk_offline alarm intervals, merged)."""
    end = min(period.t1, now)
    span = max(1.0, end - period.t0)
    down: dict[str, list[tuple[float, float]]] = defaultdict(list)
    for a in alarms:
        if a["rule"] == "kiosk_offline":
            down[a["kiosk_id"]].append((max(a["raised_at"], period.t0), min(a["cleared_at"] or end, end)))
    out = []
    for kid in ids:
        total, cur_end = 0.0, period.t0
        for s, e in sorted(down.get(kid, [])):
            s = max(s, cur_end)
            if e > s:
                total += e - s
                cur_end = e
        out.append({"kiosk_id": kid, "availability": round(100 * (1 - total / span), 2),
                    "downtime_minutes": round(total / 60, 1)})
    out.sort(key=lambda r: (r["availability"], r["kiosk_id"]))
    return out


def build(console, period: Period, *, every_kiosk: bool = False) -> dict[str, Any]:
    """The report; ``every_kiosk`` lists availability for all kiosks (CSV), else the 50 worst."""
    d = console.db
    now = console.clock()
    ids = kiosk_ids(d, period)
    alarms = _alarm_rows(d, period) if "alarms" in tables(d) else []
    avail = availability(period, alarms, ids, now)
    return {
        "period": {"from": period.start.isoformat(), "to": period.end.isoformat(), "site": period.site},
        "kiosks": len(ids),
        "usage": usage(d, period),
        "waits": waits(d, period),
        "satisfaction": satisfaction(d, period),
        "feedback": feedback_topics(d, period),
        "failures": failures(d, period, alarms, len(ids), now),
        "availability": {"mean": round(sum(a["availability"] for a in avail) / len(avail), 2) if avail else None,
                         "worst": avail if every_kiosk else avail[:50]},
    }


def report_charts(rep: dict[str, Any], t) -> dict[str, str]:
    out = {}
    if any(u["count"] for u in rep["usage"]):
        out["usage"] = charts.bar_chart(t("reports.usage"), [(t.term("service", u["service"]), u["count"])
                                                             for u in rep["usage"]])
    trend = [(i, p["index"]) for i, p in enumerate(rep["satisfaction"]["trend"]) if p["index"] is not None]
    if trend:
        days = rep["satisfaction"]["trend"]
        out["trend"] = charts.line_chart(t("reports.trend"), {t("reports.satisfaction"): trend}, ymax=100,
                                         xlabels=[days[0]["day"], days[-1]["day"]])
    if rep["feedback"] or rep["satisfaction"]["tags"]:
        topics: Counter = Counter()
        for f in rep["feedback"]:
            topics[t.term("category", f["topic"])] += f["count"]
        for tag in rep["satisfaction"]["tags"]:
            topics[t.term("tag", tag["topic"])] += tag["count"]
        out["feedback"] = charts.bar_chart(t("reports.feedback"), topics.most_common(12))
    if rep["failures"]:
        out["failures"] = charts.bar_chart(t("reports.failures"), [(t.term("device", f["device"]), f["failures"])
                                                                          for f in rep["failures"]])
    if rep["availability"]["worst"]:
        out["availability"] = charts.bar_chart(t("reports.availability"), [
            (a["kiosk_id"], a["availability"]) for a in rep["availability"]["worst"][:20]], ymax=100, unit="%")
    return out


FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


def csv_cell(value: Any) -> Any:
    """A text cell a spreadsheet would run as a formula (feedback topics, kiosk ids and site names
    come from kiosks and residents) gets a leading apostrophe; numbers stay numbers."""
    if isinstance(value, str) and value.startswith(FORMULA_START):
        return "'" + value
    return value


class _SafeWriter:
    def __init__(self, writer) -> None:
        self.writer = writer

    def writerow(self, row: list[Any]) -> None:
        self.writer.writerow([csv_cell(v) for v in row])


def to_csv(rep: dict[str, Any]) -> str:
    """One CSV with a section column, so a spreadsheet can filter each table."""
    buf = io.StringIO()
    w = _SafeWriter(csv.writer(buf))
    p = rep["period"]
    w.writerow(["section", "key", "value", "extra"])
    w.writerow(["period", p["from"], p["to"], p["site"] or "all sites"])
    for u in rep["usage"]:
        w.writerow(["usage", u["service"], u["count"], ""])
    for x in rep["waits"]["items"]:
        w.writerow(["wait_minutes", x["counter"] + (f"@{x['site']}" if x.get("site") else ""), x["median"],
                    f"p90={x['p90']} mean={x['mean']} n={x['count']}"])
    s = rep["satisfaction"]
    w.writerow(["satisfaction_index", "all", "" if s["index"] is None else s["index"], f"ratings={s['ratings']}"])
    for day in s["trend"]:
        w.writerow(["satisfaction_trend", day["day"], "" if day["index"] is None else day["index"],
                    f"ratings={day['ratings']}"])
    for f in rep["feedback"]:
        w.writerow(["feedback", f["topic"], f["count"], f"urgency={f['urgency']}"])
    for tag in s["tags"]:
        w.writerow(["rating_tag", tag["topic"], tag["count"], ""])
    for f in rep["failures"]:
        w.writerow(["device_failures", f["device"], f["failures"],
                    f"per_100_kiosk_days={f['per_100_kiosk_days']} mttr_minutes={f['mttr_minutes']}"])
    for a in rep["availability"]["worst"]:
        w.writerow(["availability_pct", a["kiosk_id"], a["availability"], f"downtime_minutes={a['downtime_minutes']}"])
    return buf.getvalue()
