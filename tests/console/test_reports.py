"""Reports over seeded service and alarm tables: figures, empty states, CSV, charts, bad periods;
the seeded figures on both backends of the fleet database (SQLite, PostgreSQL)."""

from __future__ import annotations

import json
from datetime import datetime

import pytest

from controller.fleet_db import FleetDb
from controller.store import Store
from controller.web import charts, console_reads, reports, servicedb
from controller.web.i18n import Translator
from tests.conftest import BACKENDS

DAY = datetime(2026, 3, 10, 12, 0).timestamp()


class Ctx:
    def __init__(self, where, now):
        self.db = FleetDb.of(where)
        self.clock = lambda: now


@pytest.fixture(params=BACKENDS)
def data(request, tmp_path):
    url = request.getfixturevalue("postgres_url") if request.param == "postgresql" else ""
    store = Store(tmp_path, url or None)
    with store.tx() as s:
        s.upsert_kiosks([{"kiosk_id": k, "site": site, "state": "online", "last_seen": DAY, "state_since": DAY}
                         for k, site in (("gd-a", "north"), ("gd-b", "north"), ("gd-c", "south"))])
        a = s.raise_alarm("gd-a", "kiosk_offline", "", "critical", "kiosk offline", DAY - 3600)
        s.clear_alarm(a, DAY - 1800)  # 30 minutes down on the 10th
        p = s.raise_alarm("gd-b", "paper_out", "printer", "major", "printer: paper out", DAY - 7200)
        s.clear_alarm(p, DAY - 7200 + 600)  # repaired in 10 minutes
        s.raise_alarm("gd-c", "paper_out", "printer", "major", "printer: paper out", DAY)  # still open
    store.close()
    db = FleetDb(tmp_path, url)
    conn = servicedb.connect(db)  # the service tables where the controller keeps them
    with conn:
        for i, (kiosk, stars, tags) in enumerate([("gd-a", 5, ["fast"]), ("gd-a", 4, ["fast", "clear"]),
                                                  ("gd-b", 1, ["slow"]), ("gd-c", 5, [])]):
            conn.execute("INSERT INTO svc_ratings (kiosk_id, service, stars, tags, created) VALUES (?,?,?,?,?)",
                         (kiosk, "queue_ticket" if i < 3 else "certificate", stars, json.dumps(tags), DAY - i * 86400))
        for n in range(3):
            conn.execute("INSERT INTO svc_tickets (kiosk_id, day, counter, number, seq, issued_at) VALUES (?,?,?,?,?,?)",
                         ("gd-a", "2026-03-10", "general", f"A{n:03d}", n + 1, DAY))
        conn.execute("INSERT INTO svc_feedback (ref, kiosk_id, category, urgency, created) VALUES (?,?,?,?,?)",
                     ("F1", "gd-c", "environment", "normal", DAY))
    conn.close()
    yield db
    console_reads.close_all()


def test_report_figures_for_all_sites(data):
    period = reports.parse_period({"from": "2026-03-08", "to": "2026-03-10"}, DAY)
    rep = reports.build(Ctx(data, DAY + 3600), period)
    usage = {u["service"]: u["count"] for u in rep["usage"]}
    assert usage["queue_ticket"] == 3 and usage["rating"] == 3 and usage["feedback"] == 1  # one rating is older
    sat = rep["satisfaction"]
    assert sat["ratings"] == 3 and sat["index"] == pytest.approx((10 / 3 - 1) / 4 * 100, abs=0.1)
    assert [d["day"] for d in sat["trend"]] == ["2026-03-08", "2026-03-09", "2026-03-10"]
    assert {t["topic"]: t["count"] for t in sat["tags"]} == {"fast": 2, "clear": 1, "slow": 1}
    assert rep["feedback"] == [{"topic": "environment", "urgency": "normal", "count": 1}]
    (printer,) = rep["failures"]
    assert printer["device"] == "printer" and printer["failures"] == 2 and printer["open"] == 1
    assert printer["mttr_minutes"] == 10.0
    worst = rep["availability"]["worst"][0]
    assert worst["kiosk_id"] == "gd-a" and worst["downtime_minutes"] == 30.0
    assert len(reports.build(Ctx(data, DAY + 3600), period, every_kiosk=True)["availability"]["worst"]) == 3
    assert rep["waits"]["items"] == [] and "called" in rep["waits"]["note"]  # not recorded: said, not invented


def test_report_for_one_site_and_csv(data):
    period = reports.parse_period({"from": "2026-03-10", "to": "2026-03-10", "site": "south"}, DAY)
    rep = reports.build(Ctx(data, DAY + 3600), period)
    assert rep["kiosks"] == 1 and {u["service"]: u["count"] for u in rep["usage"]}["queue_ticket"] == 0
    assert rep["satisfaction"]["index"] is None or rep["satisfaction"]["ratings"] == 0
    text = reports.to_csv(rep)
    assert text.splitlines()[0] == "section,key,value,extra"
    assert "period,2026-03-10,2026-03-10,south" in text and "availability_pct,gd-c,100.0" in text
    north = reports.build(Ctx(data, DAY + 3600), reports.parse_period({"to": "2026-03-10", "site": "north"}, DAY))
    usage = {u["service"]: u["count"] for u in north["usage"]}
    assert north["kiosks"] == 2 and usage["queue_ticket"] == 3 and usage["rating"] == 3  # the site's own figures


def test_empty_store_gives_empty_sections(tmp_path):
    Store(tmp_path).close()
    rep = reports.build(Ctx(tmp_path, DAY), reports.parse_period({}, DAY))
    assert rep["usage"] == [] and rep["satisfaction"]["index"] is None and rep["failures"] == []
    assert reports.report_charts(rep, Translator("en")) == {}


@pytest.mark.parametrize("params, word", [
    ({"from": "yesterday"}, "from"), ({"to": "2026-13-01"}, "to"),
    ({"from": "2026-03-10", "to": "2026-03-01"}, "after"), ({"from": "2020-01-01", "to": "2026-01-01"}, "longer"),
    ({"site": "x" * 65}, "site"),
])
def test_bad_periods_name_the_parameter(params, word):
    with pytest.raises(reports.PeriodError, match=word):
        reports.parse_period(params, DAY)


def test_charts_are_svg_with_escaped_labels(data):
    rep = reports.build(Ctx(data, DAY + 3600), reports.parse_period({"from": "2026-03-08", "to": "2026-03-10"}, DAY))
    out = reports.report_charts(rep, Translator("zh-CN"))
    assert set(out) == {"usage", "trend", "feedback", "failures", "availability"}
    assert all(svg.startswith("<svg") and svg.endswith("</svg>") for svg in out.values())
    evil = charts.bar_chart("<script>", [("<b>x</b>", 3)])
    assert "<script>" not in evil and "&lt;b&gt;" in evil


def test_failures_count_fault_episodes_not_alarms():
    # A headless kiosk before the contract fix raised paper_out AND device_error for one paper-out;
    # the cover opened while the paper was out is the same visit; a fault next day is another.
    def alarm(rule, subject, raised, cleared, kiosk="gd-x"):
        return {"kiosk_id": kiosk, "rule": rule, "subject": subject, "raised_at": raised, "cleared_at": cleared}

    rows = [alarm("paper_out", "printer", DAY, DAY + 600), alarm("device_error", "printer", DAY, DAY + 600),
            alarm("cover_open", "printer", DAY + 300, DAY + 900),
            alarm("paper_out", "printer", DAY + 86400, DAY + 86400 + 300),
            alarm("paper_out", "printer", DAY + 100, None, kiosk="gd-y"),
            alarm("kiosk_offline", "", DAY, DAY + 60)]
    episodes = reports.fault_episodes(rows)
    assert [(e["kiosk_id"], e["start"] - DAY, e["end"] and e["end"] - DAY) for e in episodes] == [
        ("gd-x", 0, 900), ("gd-x", 86400, 86700), ("gd-y", 100, None)]
    period = reports.parse_period({"from": "2026-03-10", "to": "2026-03-11"}, DAY)
    (printer,) = reports.failures(None, period, rows, 2, DAY + 2 * 86400)
    assert printer["failures"] == 3 and printer["open"] == 1
    assert printer["mttr_minutes"] == 10.0 and printer["mttr_unit"] == "min"  # (15 + 5) / 2 minutes
