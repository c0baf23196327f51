"""Console: residents' requests (诉求) for the staff who answer them.

Requests are registered through the real service path (``handle_request`` on the controller
database, or ``svc/request`` over MQTT to a running kiosk-controller). Staff list them with masked
numbers, an operator shows a number (audited; a viewer never can) and marks a request handled
(audited, once); overdue requests against the promised reply time are highlighted; filters by
site, status and urgency. The browser test runs a real controller and Chromium and saves
``test-artifacts/console-requests.png``.
"""

from __future__ import annotations

import json
import os
import re
import sys
import threading
import time
from datetime import datetime

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from controller.fleet_clock import FleetClock
from controller.service_backend import forget_phones, handle_request
from controller.service_backend.operations import FEEDBACK_CATEGORIES, feedback_problems
from controller.web import i18n, servicedb
from controller.web.resident_requests import (
    REPLY_DAYS,
    STATUSES,
    URGENCIES,
    FilterError,
    due_at,
    parse_filters,
)
from foundation.logs import mask_phone as mask
from tests.conftest import BACKENDS
from tests.console.test_browser_e2e import ARGS, CHROMIUM, publish_retained
from tests.support.processes import Proc

TZ = FleetClock().tz  # the fleet's default zone, Asia/Shanghai: these stores record no other
# Wednesday 11 March 2026, 12:00 in Shanghai: the console's clock in the API tests.
NOW = datetime(2026, 3, 11, 12, 0, tzinfo=TZ).timestamp()
HOUR, DAY = 3600, 86400


@pytest.fixture(params=BACKENDS)
def backend(request):
    """The tests over the console's fleet (``console_env``) run on SQLite and on PostgreSQL."""
    return request.param


def submit(db, kiosk_id, category, urgency, phone="", *, at, problem=""):
    """A request registered as a kiosk's svc/request is answered (the service backend's own code)."""
    conn = servicedb.connect(db)
    try:
        args = {"category": category, "urgency": urgency, **({"phone": phone} if phone else {}),
                **({"problem": problem} if problem else {})}
        reply = handle_request(conn, kiosk_id, {"service": "feedback", "op": "submit", "args": args}, at)
    finally:
        conn.close()
    assert reply["ok"], reply
    return reply["data"]["ref"]


def blank_old_numbers(db, before):
    """What the controller's hourly prune does after phone_retention_days (services.forget_phones)."""
    conn = servicedb.open_db(db)
    try:
        forget_phones(conn, before)
    finally:
        conn.close()


@pytest.fixture
def reqs(console_env):
    """Requests at the seeded kiosks (gd-0000 site-0, gd-0001 site-1, gd-0002 site-2, gd-0003 site-0)."""
    console_env.clock = lambda: NOW
    d = console_env.db
    refs = {
        # urgent, 2 days old (Monday 12:00): the answer was due Tuesday 12:00
        "late_urgent": submit(d, "gd-0001", "safety", "urgent", "13812345678", at=NOW - 2 * DAY, problem="parking"),
        # normal, 2 days old: due Thursday 12:00, still in time
        "normal": submit(d, "gd-0000", "environment", "normal", "13900001111", at=NOW - 2 * DAY),
        # urgent, an hour old, without a number
        "fresh_urgent": submit(d, "gd-0002", "facilities", "urgent", at=NOW - HOUR),
        # normal, 40 days old: its number has been blanked after 30 days
        "old": submit(d, "gd-0003", "other", "normal", "23456789", at=NOW - 40 * DAY),
    }
    blank_old_numbers(d, NOW - 30 * DAY)
    return refs


def test_reply_deadline_counts_working_days_in_shanghai():
    at = lambda *a: datetime(*a, tzinfo=TZ).timestamp()  # noqa: E731
    assert due_at(at(2026, 3, 9, 10, 0), 1, zone=TZ) == at(2026, 3, 10, 10, 0)  # Monday -> Tuesday
    assert due_at(at(2026, 3, 13, 10, 0), 1, zone=TZ) == at(2026, 3, 16, 10, 0)  # Friday -> Monday, not Saturday
    assert due_at(at(2026, 3, 13, 10, 0), 3, zone=TZ) == at(2026, 3, 18, 10, 0)  # Friday -> Wednesday
    assert due_at(at(2026, 3, 14, 15, 0), 1, zone=TZ) == at(2026, 3, 17, 0, 0)  # Saturday: Monday is the working day
    assert due_at(at(2026, 3, 15, 23, 0), 3, zone=TZ) == at(2026, 3, 19, 0, 0)  # Sunday: Monday to Wednesday
    assert REPLY_DAYS == {"urgent": 1, "normal": 3}


def test_filters_and_masks():
    assert parse_filters({}) == parse_filters({"status": "open", "urgency": "all", "limit": "200"})
    f = parse_filters({"site": " site-1 ", "status": "handled", "urgency": "urgent", "limit": "5"})
    assert (f.site, f.status, f.urgency, f.limit) == ("site-1", "handled", "urgent", 5)
    assert f.query() == "site=site-1&status=handled&urgency=urgent&limit=5"
    for bad, word in (({"status": "closed"}, "status"), ({"urgency": "high"}, "urgency"), ({"limit": "x"}, "limit"),
                      ({"limit": "0"}, "limit"), ({"site": "s" * 65}, "site")):
        with pytest.raises(FilterError, match=word):
            parse_filters(bad)
    assert mask("13812345678") == "138****5678"
    assert mask("23456789") == "******89" and mask("2345678") == "*****78" and mask("") == ""


def test_list_masks_numbers_and_sorts_urgent_newest_first(reqs, clients):
    r = clients["vera"].get("/api/v1/requests")
    assert r.status_code == 200, r.text
    body = r.json()
    assert [i["ref"] for i in body["items"]] == [reqs["fresh_urgent"], reqs["late_urgent"], reqs["normal"],
                                                 reqs["old"]]
    assert body["total"] == 4 and body["phone_retention_days"] == 30
    by = {i["ref"]: i for i in body["items"]}
    late = by[reqs["late_urgent"]]
    assert late["phone"] == "138****5678" and late["phone_state"] == "kept" and late["site"] == "site-1"
    assert late["category"] == "safety" and late["status"] == "open" and late["reply_days"] == 1
    assert late["problem"] == "parking"
    assert by[reqs["normal"]]["phone"] == "139****1111"
    assert by[reqs["fresh_urgent"]]["phone_state"] == "none"
    assert by[reqs["old"]]["phone"] == "" and by[reqs["old"]]["phone_state"] == "expired"
    assert "13812345678" not in r.text and "13900001111" not in r.text
    # Overdue against the promise: urgent after 1 working day, normal after 3.
    assert {ref: by[ref]["overdue"] for ref in by} == {reqs["late_urgent"]: True, reqs["normal"]: False,
                                                       reqs["fresh_urgent"]: False, reqs["old"]: True}
    assert late["due_at"] == NOW - DAY and late["age_hours"] == 48.0


def test_filters_by_site_status_and_urgency(reqs, clients):
    c = clients["vera"]
    refs = lambda q: [i["ref"] for i in c.get("/api/v1/requests", params=q).json()["items"]]  # noqa: E731
    assert refs({"site": "site-0"}) == [reqs["normal"], reqs["old"]]
    assert refs({"urgency": "urgent"}) == [reqs["fresh_urgent"], reqs["late_urgent"]]
    assert refs({"urgency": "normal", "site": "site-0"}) == [reqs["normal"], reqs["old"]]
    assert refs({"site": "nowhere"}) == [] and refs({"status": "handled"}) == []
    assert len(refs({"status": "all", "limit": "2"})) == 2
    assert c.get("/api/v1/requests", params={"limit": "2"}).json()["total"] == 4
    bad = c.get("/api/v1/requests", params={"status": "closed"})
    assert bad.status_code == 400 and "status must be open, handled or all" in bad.json()["error"]


def test_a_viewer_cannot_reveal_and_an_operator_reveal_is_audited(reqs, clients, console_env):
    ref = reqs["late_urgent"]
    denied = clients["vera"].post(f"/api/v1/requests/{ref}/reveal")
    assert denied.status_code == 403 and "needs operator" in denied.json()["error"]
    no_csrf = clients["otto"].post(f"/api/v1/requests/{ref}/reveal", headers={"x-csrf-token": ""})
    assert no_csrf.status_code == 403
    assert console_env.accounts.audit_trail(target=f"request:{ref}")["items"] == []
    r = clients["otto"].post(f"/api/v1/requests/{ref}/reveal")
    assert r.status_code == 200 and r.json() == {"ref": ref, "phone": "13812345678"}
    assert r.headers["cache-control"] == "no-store"
    trail = console_env.accounts.audit_trail(target=f"request:{ref}")["items"]
    assert [(a["user"], a["action"]) for a in trail] == [("otto", "request.reveal")]
    assert trail[0]["detail"] == {"kiosk_id": "gd-0001", "site": "site-1"}  # never the number
    assert "13812345678" not in json.dumps(console_env.accounts.audit_trail(limit=1000)["items"])


def test_reveal_refusals_name_the_reason(reqs, clients, console_env):
    c = clients["otto"]
    unknown = c.post("/api/v1/requests/F000000XXXX/reveal")
    assert unknown.status_code == 404 and "no request 'F000000XXXX'" in unknown.json()["error"]
    assert c.post("/api/v1/requests/" + "F" * 300 + "/reveal").status_code == 404
    gone = c.post(f"/api/v1/requests/{reqs['old']}/reveal")
    assert gone.status_code == 410 and "number no longer kept after 30 days" in gone.json()["error"]
    none = c.post(f"/api/v1/requests/{reqs['fresh_urgent']}/reveal")
    assert none.status_code == 409 and "left no call-back number" in none.json()["error"]
    assert [a for a in console_env.accounts.audit_trail()["items"] if a["action"] == "request.reveal"] == []


def test_mark_handled_moves_it_from_open_to_handled_once(reqs, clients, console_env):
    ref = reqs["late_urgent"]
    assert clients["vera"].post(f"/api/v1/requests/{ref}/handled").status_code == 403
    r = clients["otto"].post(f"/api/v1/requests/{ref}/handled", json={"note": "called back,\n pothole reported"})
    assert r.status_code == 200, r.text
    first = r.json()
    assert first["status"] == "handled" and first["handled_by"] == "otto" and first["handled_at"] == NOW
    assert first["note"] == "called back, pothole reported" and first["repeated"] is False
    again = clients["ada"].post(f"/api/v1/requests/{ref}/handled", json={"note": "twice"})
    assert again.status_code == 200 and again.json() == {**first, "repeated": True}  # the first record stays
    open_refs = [i["ref"] for i in clients["vera"].get("/api/v1/requests").json()["items"]]
    handled = clients["vera"].get("/api/v1/requests", params={"status": "handled"}).json()["items"]
    assert ref not in open_refs and [i["ref"] for i in handled] == [ref]
    assert handled[0]["overdue"] is True  # handled after its reply was due
    trail = console_env.accounts.audit_trail(target=f"request:{ref}")["items"]
    assert [(a["user"], a["action"], a["detail"]["note"]) for a in trail] == \
        [("otto", "request.handled", "called back, pothole reported")]
    assert len(clients["vera"].get("/api/v1/requests", params={"status": "all"}).json()["items"]) == 4


def test_mark_handled_refusals(reqs, clients):
    c = clients["otto"]
    ref = reqs["normal"]
    assert c.post("/api/v1/requests/F000000XXXX/handled").status_code == 404
    long = c.post(f"/api/v1/requests/{ref}/handled", json={"note": "x" * 201})
    assert long.status_code == 422 and "at most 200 characters" in long.json()["error"]
    assert c.post(f"/api/v1/requests/{ref}/handled", json={"note": 5}).status_code == 422
    extra = c.post(f"/api/v1/requests/{ref}/handled", json={"state": "done"})
    assert extra.status_code == 422 and "unknown field(s) state" in extra.json()["error"]
    assert c.post(f"/api/v1/requests/{ref}/handled", content="note", headers={"content-type": "text/plain"}) \
        .status_code == 415
    assert c.get("/api/v1/requests", params={"status": "handled"}).json()["items"] == []


def test_page_shows_masked_numbers_and_forms_by_role(reqs, clients):
    viewer = clients["vera"].get("/requests", params={"status": "all"})
    assert viewer.status_code == 200
    page = viewer.text
    assert "138****5678" in page and "13812345678" not in page and "/reveal" not in page and "/handled" not in page
    assert "号码已超过 30 天，不再保存" in page and "治安安全" in page and "紧急" in page
    assert '<div class="problem">乱停车、占用通道</div>' in page  # the problem the resident chose, translated
    assert f'id="req-{reqs["late_urgent"]}"' in page
    assert 'class="req-open urg-urgent overdue"' in page  # the late urgent request is highlighted
    assert page.count(" overdue\"") == 2  # and the 40-day-old one; the others are in time
    op = clients["otto"].get("/requests").text
    assert op.count('class="inline reveal"') == 2 and op.count('class="inline handle"') == 4
    assert f'action="/requests/{reqs["late_urgent"]}/reveal?status=open"' in op


def test_page_forms_send_csrf_in_the_body_and_keep_the_view(reqs, app, console_env):
    from tests.console.conftest import login

    client = login(app, "otto")
    csrf = client.headers.pop("x-csrf-token")  # a plain HTML form sends no header
    try:
        ref = reqs["late_urgent"]
        r = client.post(f"/requests/{ref}/reveal?site=site-1", data={"csrf": csrf})
        assert r.status_code == 200 and '<strong class="revealed">13812345678</strong>' in r.text
        assert r.headers["cache-control"] == "no-store"
        assert f'id="req-{reqs["normal"]}"' not in r.text  # still filtered to site-1
        assert client.post(f"/requests/{ref}/reveal", data={"csrf": "wrong"}).status_code == 403
        gone = client.post(f"/requests/{reqs['old']}/reveal", data={"csrf": csrf})
        assert gone.status_code == 410 and "number no longer kept after 30 days" in gone.text
        done = client.post(f"/requests/{ref}/handled?site=site-1", data={"csrf": csrf, "note": "done"})
        assert done.status_code == 200 and f"诉求 {ref} 已标记为已处理" in done.text
        assert f'id="req-{ref}"' not in done.text  # gone from the open list it returns to
        again = client.post(f"/requests/{ref}/handled", data={"csrf": csrf, "note": ""})
        assert f"诉求 {ref} 已由 otto 处理" in again.text
        actions = [a["action"] for a in console_env.accounts.audit_trail(target=f"request:{ref}")["items"]]
        assert actions == ["request.handled", "request.reveal"]
    finally:
        client.__exit__(None, None, None)


def test_requests_are_translated_and_documented(anon):
    for lang in i18n.LANGS:
        cat = i18n.catalogue(lang)
        keys = [f"requests.category.{c}" for c in FEEDBACK_CATEGORIES] + \
            [f"requests.urgency.{u}" for u in URGENCIES] + [f"requests.status.{s}" for s in STATUSES] + \
            [f"requests.problem.{p}" for c in FEEDBACK_CATEGORIES for p in feedback_problems(c)]
        assert [k for k in keys if k not in cat] == [], lang
    paths = anon.get("/openapi.json").json()["paths"]
    assert {"/api/v1/requests", "/api/v1/requests/{ref}/reveal", "/api/v1/requests/{ref}/handled"} <= set(paths)
    assert "410" in paths["/api/v1/requests/{ref}/reveal"]["post"]["responses"]


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(params=st.dictionaries(st.sampled_from(["site", "status", "urgency", "limit", "x"]),
                              st.one_of(st.text(max_size=70), st.sampled_from(["open", "all", "urgent", "-1"])),
                              max_size=4),
       note=st.one_of(st.none(), st.text(max_size=250), st.integers(), st.lists(st.text(max_size=3), max_size=2)))
def test_any_parameters_or_note_answer_4xx_not_500(reqs, clients, params, note):
    r = clients["vera"].get("/api/v1/requests", params=params)
    assert r.status_code in (200, 400), (params, r.text[:200])
    h = clients["otto"].post(f"/api/v1/requests/{reqs['normal']}/handled", json={"note": note})
    assert h.status_code in (200, 422), (note, h.text[:200])


# -- in a real browser, against a real kiosk-controller ------------------------------------------

def submit_over_mqtt(broker, kiosk_id, args):
    """The kiosk's way: ``svc/request`` with a response topic; returns the controller's answer."""
    import paho.mqtt.client as mqtt
    from paho.mqtt.packettypes import PacketTypes
    from paho.mqtt.properties import Properties

    got, ready, subscribed = [], threading.Event(), threading.Event()
    c = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, protocol=mqtt.MQTTv5)
    c.on_message = lambda cl, u, m: (got.append(json.loads(m.payload)), ready.set())
    c.on_subscribe = lambda *a: subscribed.set()
    c.connect("127.0.0.1", broker.port)
    c.loop_start()
    try:
        reply_topic = f"kiosk/v1/{kiosk_id}/svc/response"
        c.subscribe(reply_topic, 1)
        assert subscribed.wait(10), "the broker did not acknowledge the subscription"
        props = Properties(PacketTypes.PUBLISH)
        props.ResponseTopic = reply_topic
        props.CorrelationData = b"feedback-1"
        body = {"v": 1, "kiosk_id": kiosk_id, "service": "feedback", "op": "submit", "args": args}
        c.publish(f"kiosk/v1/{kiosk_id}/svc/request", json.dumps(body), 1, properties=props).wait_for_publish(5)
        assert ready.wait(15), "no svc/response from the controller"
    finally:
        c.loop_stop()
        c.disconnect()
    assert got[0]["ok"], got[0]
    return got[0]["data"]


@pytest.mark.skipif(not os.path.exists(CHROMIUM), reason="needs /usr/bin/chromium")
def test_staff_work_through_requests_in_a_real_browser(broker, procs, tmp_path, artifacts):
    from playwright.sync_api import expect, sync_playwright

    from controller.store import Store
    from controller.web.accounts import Accounts

    data = tmp_path / "controller-data"
    acc = Accounts(data)
    acc.add_user("otto", "operator", "otto-operator-pw")
    acc.add_user("vera", "viewer", "vera-viewer-pass")
    acc.close()
    Store(data).close()
    now = time.time()
    # Registered earlier (the controller was not running): overdue whatever today's weekday is.
    late = submit(data, "gd-req-north", "safety", "urgent", "13711112222", at=now - 5 * DAY)
    old = submit(data, "gd-req-south", "environment", "normal", "13633334444", at=now - 20 * DAY)
    config = tmp_path / "controller.toml"
    config.write_text("phone_retention_days = 14\n", encoding="utf-8")
    ctl = Proc([sys.executable, "-m", "controller.cli", "--config", str(config), "--broker", broker.url,
                "--data-dir", str(data), "--http", "127.0.0.1:0"])
    procs.append(ctl)
    url = ctl.wait_for("console http://", timeout=20).split(" ", 1)[1].strip()
    for kiosk_id, site in (("gd-req-north", "site-north"), ("gd-req-south", "site-south")):
        publish_retained(broker, f"kiosk/v1/{kiosk_id}/status", {"v": 1, "state": "online", "kiosk_id": kiosk_id,
                                                                 "boot_id": "b1", "site": site, "mode": "normal"})
    fresh = submit_over_mqtt(broker, "gd-req-south", {"category": "facilities", "urgency": "normal",
                                                      "problem": "water_leak", "phone": "13855556666"})
    assert fresh["reply_days"] == 3 and fresh["call_back"] is True
    fresh = fresh["ref"]

    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        try:
            staff = browser.new_page(locale="zh-CN", viewport={"width": 1360, "height": 760})
            staff.set_default_timeout(15000)
            sign_in(staff, url, "otto", "otto-operator-pw")
            expect(staff.locator("#k-gd-req-north")).to_be_visible()  # registered, so its site is known
            expect(staff.locator("#k-gd-req-south")).to_be_visible()
            staff.click("nav a[href='/requests']")
            staff.wait_for_url("**/requests")
            rows = staff.locator("#requests tbody tr")
            expect(rows).to_have_count(3)
            expect(rows.nth(0)).to_have_attribute("data-ref", late)  # urgent first, then the newest
            expect(rows.nth(1)).to_have_attribute("data-ref", fresh)
            expect(staff.locator(f"#req-{late}")).to_have_class("req-open urg-urgent overdue")
            expect(staff.locator(f"#req-{late} .due")).to_contain_text("已超期")
            expect(staff.locator(f"#req-{fresh}")).not_to_have_class(re.compile(r"\boverdue\b"))
            expect(staff.locator(f"#req-{fresh} .phone .masked")).to_have_text("138****6666")
            expect(staff.locator(f"#req-{fresh}")).to_contain_text("site-south")
            expect(staff.locator(f"#req-{fresh}")).to_contain_text("设施维修")
            expect(staff.locator(f"#req-{fresh} .problem")).to_have_text("漏水、渗水")
            # The controller blanked the 20-day-old number at start (its phone_retention_days is 14).
            expect(staff.locator(f"#req-{old} .phone")).to_have_text("号码已超过 14 天，不再保存")

            staff.locator(f"#req-{late} form.reveal button").click()
            expect(staff.locator(f"#req-{late} .revealed")).to_have_text("13711112222")
            expect(staff.locator(f"#req-{fresh} .phone")).not_to_contain_text("13855556666")
            staff.screenshot(path=str(artifacts / "console-requests.png"), full_page=True)

            staff.locator(f"#req-{late} input[name=note]").fill("已回电，已派网格员")
            staff.locator(f"#req-{late} form.handle button").click()
            expect(staff.locator("#requests-message")).to_contain_text(late)
            expect(staff.locator(f"#req-{late}")).to_have_count(0)  # no longer open
            staff.select_option("select[name=status]", "handled")
            staff.click("form.filters button")
            expect(rows).to_have_count(1)
            expect(staff.locator(f"#req-{late} .handling")).to_contain_text("otto")
            expect(staff.locator(f"#req-{late} .note")).to_have_text("已回电，已派网格员")
            staff.select_option("select[name=status]", "open")
            staff.select_option("select[name=site]", "site-south")
            staff.click("form.filters button")
            expect(rows).to_have_count(2)
            expect(staff.locator("#requests")).not_to_contain_text("site-north")
            staff.select_option("select[name=urgency]", "urgent")
            staff.click("form.filters button")
            expect(staff.locator("#requests-empty")).to_be_visible()

            staff.goto(url + "audit")
            audit = staff.locator("table").first
            expect(audit).to_contain_text("查看回访号码")
            expect(audit).to_contain_text("标记已处理")
            assert "13711112222" not in audit.inner_text()

            viewer = browser.new_page(locale="en-GB")
            viewer.set_default_timeout(15000)
            sign_in(viewer, url, "vera", "vera-viewer-pass")
            viewer.goto(url + "requests?status=all")
            expect(viewer.locator("#requests tbody tr")).to_have_count(3)
            expect(viewer.locator(f"#req-{fresh} .phone")).to_have_text("138****6666")
            expect(viewer.locator("form.reveal")).to_have_count(0)
            expect(viewer.locator("form.handle")).to_have_count(0)
            assert "13855556666" not in viewer.content() and "13711112222" not in viewer.content()
            csrf = viewer.locator("meta[name=csrf-token]").get_attribute("content")
            denied = viewer.request.post(url + f"api/v1/requests/{fresh}/reveal", headers={"x-csrf-token": csrf})
            assert denied.status == 403, denied.text()
            expect(viewer.locator(f"#req-{old} .phone")).to_have_text("Number no longer kept after 14 days")
        finally:
            browser.close()


def sign_in(page, url, name, password):
    page.goto(url)
    page.fill("input[name=name]", name)
    page.fill("input[name=password]", password)
    page.click("button[type=submit]")
    page.wait_for_url("**/fleet")
