"""Console: call the next ticket (API, page, roles, CSRF, audit), wait-time reports from real calls,
and enrolment tokens issued from the console (shown once, never logged, listed without the token);
on both backends of the fleet database."""

from __future__ import annotations

import logging

import pytest

from controller.service_backend import handle_request
from controller.web import reports, servicedb
from tests.conftest import BACKENDS
from tests.support.clocks import midday_clock

pytestmark = pytest.mark.parametrize("backend", BACKENDS)


@pytest.fixture
def midday(console_env):
    """Tickets belong to the local day they were taken on: the console and the tickets share a clock
    at midday, so "ten minutes ago" is today at any hour the suite runs."""
    console_env.clock = midday_clock()


def _tickets(console, kiosk="gd-0001", n=3, ago=600):
    conn = servicedb.connect(console.db)  # where the controller's service thread writes them
    now = console.clock()
    got = [handle_request(conn, kiosk, {"service": "queue_ticket", "op": "take", "args": {"counter": "general"}},
                          now - ago + i)["data"]["number"] for i in range(n)]
    conn.close()
    return got


def test_operator_calls_next_by_api_and_it_is_audited(console_env, clients, midday):
    numbers = _tickets(console_env)  # gd-0001 is at site-1
    r = clients["otto"].post("/api/v1/sites/site-1/queue/next", json={"counter": "general", "request_id": "r1"})
    assert r.status_code == 200, r.text
    assert r.json()["number"] == numbers[0] and r.json()["wait_minutes"] >= 9.9
    again = clients["otto"].post("/api/v1/sites/site-1/queue/next", json={"counter": "general", "request_id": "r1"})
    assert again.json()["number"] == numbers[0] and again.json()["repeated"]
    assert clients["otto"].post("/api/v1/sites/site-1/queue/next").json()["number"] == numbers[1]
    trail = console_env.accounts.audit_trail(target="site:site-1")["items"]
    assert [a["action"] for a in trail].count("queue.call_next") == 2  # the repeat is not a second call
    q = clients["vera"].get("/api/v1/sites/site-1/queue").json()
    assert {c["counter"]: c["waiting"] for c in q["counters"]}["general"] == 1 and len(q["called"]) == 2


def test_call_next_refusals(clients, console_env, midday):
    assert clients["vera"].post("/api/v1/sites/site-1/queue/next").status_code == 403
    assert clients["otto"].post("/api/v1/sites/site-1/queue/next").status_code == 409  # nobody waits
    assert clients["otto"].post("/api/v1/sites/nowhere/queue/next").status_code == 404
    r = clients["otto"].post("/api/v1/sites/site-1/queue/next", json={"counter": "bank"})
    assert r.status_code == 422 and "counter" in r.json()["error"]
    no_csrf = clients["otto"].post("/api/v1/sites/site-1/queue/next", headers={"x-csrf-token": ""})
    assert no_csrf.status_code == 403


def test_queue_page_button_calls_with_csrf(console_env, clients, midday):
    numbers = _tickets(console_env, n=2)
    page = clients["otto"].get("/sites/site-1/queue")
    assert page.status_code == 200 and numbers[0] in page.text
    rid = page.text.split('name="request_id" value="')[1].split('"')[0]
    form = {"csrf": clients["otto"].headers["x-csrf-token"], "counter": "general", "request_id": rid}
    r = clients["otto"].post("/sites/site-1/queue", data=form, headers={"x-csrf-token": ""})
    assert r.status_code == 200 and numbers[0] in r.text and 'id="queue-called"' in r.text
    # The same form submitted twice (double click) calls nobody else.
    clients["otto"].post("/sites/site-1/queue", data=form, headers={"x-csrf-token": ""})
    assert clients["vera"].get("/api/v1/sites/site-1/queue").json()["counters"][0]["waiting"] == 1
    bad = clients["otto"].post("/sites/site-1/queue", data={**form, "csrf": "x"}, headers={"x-csrf-token": ""})
    assert bad.status_code == 403
    viewer = clients["vera"].get("/sites/site-1/queue")
    assert viewer.status_code == 200 and "<button class=\"primary\"" not in viewer.text


def test_report_wait_times_come_from_real_calls(console_env, clients, midday):
    assert "no_called_at" not in str(reports.waits(console_env.db, reports.parse_period({}, console_env.clock())))
    _tickets(console_env, kiosk="gd-0001", n=3, ago=1200)  # site-1
    _tickets(console_env, kiosk="gd-0002", n=1, ago=300)  # site-2
    for site in ("site-1", "site-1", "site-1", "site-2"):
        assert clients["otto"].post(f"/api/v1/sites/{site}/queue/next").status_code == 200
    rep = clients["vera"].get("/api/v1/reports").json()["waits"]
    rows = {(w["counter"], w["site"]): w for w in rep["items"]}
    all_sites, one = rows[("general", "")], rows[("general", "site-1")]
    assert all_sites["count"] == 4 and one["count"] == 3
    assert 19.9 <= one["median"] <= 20.1 and 19.9 <= one["p90"] <= 20.1
    assert 4.9 <= rows[("general", "site-2")]["median"] <= 5.1
    csv = clients["vera"].get("/reports/report.csv").text
    assert "wait_minutes,general@site-1," in csv
    assert "queue.counter" not in clients["vera"].get("/reports").text  # translated labels


def test_report_waits_empty_state(console_env, midday):
    _tickets(console_env, n=1)
    got = reports.waits(console_env.db, reports.parse_period({}, console_env.clock()))
    assert got["items"] == [] and "called" in got["note"]


def test_enrolment_token_issued_once_never_logged(console_env, clients, caplog):
    caplog.set_level(logging.DEBUG)
    r = clients["ada"].post("/api/v1/enrolment-tokens", json={"site": "site-1", "kiosk_id": "gd-0100", "ttl": 600})
    assert r.status_code == 201, r.text
    tok = r.json()
    assert tok["token"].startswith("ket1.") and tok["site"] == "site-1" and tok["kiosk_id"] == "gd-0100"
    listed = clients["ada"].get("/api/v1/enrolment-tokens")
    assert tok["token"] not in listed.text and tok["token"][5:] not in listed.text
    (item,) = listed.json()["items"]
    assert item["site"] == "site-1" and item["state"] == "unused" and item["kiosk_id"] == "gd-0100"
    assert tok["token"] not in caplog.text and tok["token"][5:] not in caplog.text
    audit = clients["ada"].get("/api/v1/audit").text
    assert "enrolment_token.issue" in audit and tok["token"][5:] not in audit
    page = clients["ada"].get("/enrolment")
    assert tok["token"][5:] not in page.text and "site-1" in page.text
    # The token really enrols: it is the controller's own kind, stored as a hash.
    from controller.enrolment_service import token_hash

    conn = servicedb.open_db(console_env.db)
    assert conn.execute("SELECT site FROM enrol_tokens WHERE token_hash=?", (token_hash(tok["token"]),)).fetchone()
    conn.close()


def test_enrolment_token_roles_and_validation(clients):
    assert clients["otto"].post("/api/v1/enrolment-tokens", json={"site": "s"}).status_code == 403
    assert clients["vera"].post("/api/v1/enrolment-tokens", json={"site": "s"}).status_code == 403
    assert clients["vera"].get("/api/v1/enrolment-tokens").status_code == 403
    assert clients["vera"].get("/enrolment").status_code == 403
    for body, word in (({}, "site"), ({"site": "s", "ttl": 0}, "ttl"), ({"site": "s", "kiosk_id": "bad id!"}, "kiosk"),
                       ({"site": "s", "extra": 1}, "extra")):
        r = clients["ada"].post("/api/v1/enrolment-tokens", json=body)
        assert r.status_code == 422 and word in r.json()["error"].lower(), (body, r.text)


def test_enrolment_form_shows_token_once_with_csrf(console_env, clients):
    form = {"csrf": clients["ada"].headers["x-csrf-token"], "site": "site-2", "kiosk_id": "", "ttl_minutes": "30"}
    r = clients["ada"].post("/enrolment", data=form, headers={"x-csrf-token": ""})
    assert r.status_code == 200
    token = r.text.split('<pre id="new-enrol-token">')[1].split("<")[0]
    assert token.startswith("ket1.")
    assert token not in clients["ada"].get("/enrolment").text  # shown once
    bad = clients["ada"].post("/enrolment", data={**form, "csrf": "nope"}, headers={"x-csrf-token": ""})
    assert bad.status_code == 403
    wrong = clients["ada"].post("/enrolment", data={**form, "ttl_minutes": "soon"}, headers={"x-csrf-token": ""})
    assert wrong.status_code == 422


def test_openapi_documents_new_endpoints(anon):
    paths = anon.get("/openapi.json").json()["paths"]
    assert "operator" in paths["/api/v1/sites/{site}/queue/next"]["post"]["description"]
    assert "admin" in paths["/api/v1/enrolment-tokens"]["post"]["description"]
