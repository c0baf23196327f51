"""REST API and pages over a real store: filters, pagination, authorisation, CSRF, 4xx not 500."""

from __future__ import annotations

import pytest

from tests.conftest import BACKENDS
from tests.console.conftest import TestClient

# The console's reads, accounts' audit rows and API on the SQLite file and on PostgreSQL alike.
pytestmark = pytest.mark.parametrize("backend", BACKENDS)


def test_fleet_list_filters_and_pages(clients):
    c = clients["vera"]
    body = c.get("/api/v1/kiosks", params={"size": 7}).json()
    assert body["total"] == 30 and len(body["items"]) == 7 and body["pages"] == 5
    page5 = c.get("/api/v1/kiosks", params={"size": 7, "page": 5}).json()
    assert [k["kiosk_id"] for k in page5["items"]] == ["gd-0028", "gd-0029"]
    off = c.get("/api/v1/kiosks", params={"status": "offline"}).json()
    assert off["total"] == 6 and all(k["state"] == "offline" for k in off["items"])
    deg = c.get("/api/v1/kiosks", params={"status": "degraded"}).json()["items"]
    assert deg and all("printer: load paper" in k["actions"] for k in deg)
    oos = c.get("/api/v1/kiosks", params={"status": "out_of_service"}).json()["items"]
    assert {k["kiosk_id"] for k in oos} == {"gd-0003", "gd-0017", "gd-0024"}  # gd-0010 is offline first
    site = c.get("/api/v1/kiosks", params={"site": "site-1", "q": "gd-001"}).json()["items"]
    assert {k["kiosk_id"] for k in site} == {"gd-0010", "gd-0013", "gd-0016", "gd-0019"}
    desc = c.get("/api/v1/kiosks", params={"sort": "-kiosk_id", "size": 1}).json()["items"]
    assert desc[0]["kiosk_id"] == "gd-0029"
    counts = c.get("/api/v1/summary").json()["counts"]
    assert counts["total"] == 30 and sum(counts[s] for s in ("online", "degraded", "out_of_service", "offline")) == 30


@pytest.mark.parametrize("params, word", [
    ({"page": "x"}, "page"), ({"page": "0"}, "page"), ({"size": "100000"}, "size"),
    ({"status": "broken"}, "status"), ({"sort": "password"}, "sort"), ({"q": "x" * 101}, "q"),
])
def test_bad_list_parameters_are_400_naming_the_parameter(clients, params, word):
    r = clients["vera"].get("/api/v1/kiosks", params=params)
    assert r.status_code == 400 and word in r.json()["error"]


def test_unknown_kiosk_and_endpoint_are_404(clients):
    c = clients["vera"]
    assert c.get("/api/v1/kiosks/nope").status_code == 404
    assert "nope" in c.get("/api/v1/kiosks/nope").json()["error"]
    assert c.get("/api/v1/unknown").status_code == 404
    assert c.get("/kiosks/nope").status_code == 404


def test_signed_out_requests_are_refused(anon):
    assert anon.get("/api/v1/kiosks").status_code == 401
    assert anon.get("/metrics").status_code == 401
    r = anon.get("/fleet", follow_redirects=False, headers={"accept": "text/html"})
    assert r.status_code == 303 and r.headers["location"].startswith("/login")
    assert anon.get("/openapi.json").status_code == 200  # the API description is public


def test_viewer_cannot_command_ack_or_edit_config(clients):
    v = clients["vera"]
    r = v.post("/api/v1/kiosks/gd-0001/commands", json={"name": "test_print", "args": {}})
    assert r.status_code == 403 and "viewer" in r.json()["error"]
    assert v.post("/api/v1/alarms/1/ack", json={}).status_code == 403
    assert v.put("/api/v1/config/fleet", json={"values": {"volume": 50}}).status_code == 403
    r = v.post("/config", data={"csrf": v.headers["x-csrf-token"], "layer": "fleet", "text": "{}", "action": "apply"})
    assert r.status_code == 403


def test_operator_cannot_edit_config_but_reaches_the_command_path(clients):
    o = clients["otto"]
    assert o.put("/api/v1/config/fleet", json={"values": {}}).status_code == 403
    # No controller runs in this app: the command is refused as unavailable, never faked as sent.
    r = o.post("/api/v1/kiosks/gd-0001/commands", json={"name": "test_print", "args": {}})
    assert r.status_code == 503 and "controller" in r.json()["error"]


def test_csrf_is_required_for_session_mutations(clients, app):
    o = clients["otto"]
    r = o.post("/api/v1/kiosks/gd-0001/commands", json={"name": "test_print"}, headers={"x-csrf-token": "forged"})
    assert r.status_code == 403 and "CSRF" in r.json()["error"]
    r = o.post("/logout", data={"csrf": "forged"})
    assert r.status_code == 403


@pytest.mark.parametrize("kwargs, status, word", [
    ({"content": b"{not json", "headers": {"content-type": "application/json"}}, 400, "JSON"),
    ({"content": b"[1,2]", "headers": {"content-type": "application/json"}}, 400, "object"),
    ({"data": {"name": "test_print"}}, 415, "application/json"),
    ({"json": {"name": "self_destruct"}}, 422, "name"),
    ({"json": {"name": "test_print", "args": [1]}}, 422, "args"),
    ({"json": {"name": "test_print", "extra": 1}}, 422, "extra"),
    ({"content": b"\xff\xfe", "headers": {"content-type": "application/json"}}, 400, "UTF-8"),
])
def test_malformed_command_requests_get_4xx_with_a_message(clients, kwargs, status, word):
    r = clients["otto"].post("/api/v1/kiosks/gd-0001/commands", **kwargs)
    assert r.status_code == status and word in r.json()["error"]


def test_api_tokens_see_only_what_their_role_allows(console_env, app):
    viewer = console_env.accounts.create_token("dashboard", "viewer")
    admin = console_env.accounts.create_token("automation", "admin")
    with TestClient(app) as c:
        hv = {"authorization": f"Bearer {viewer}"}
        assert c.get("/api/v1/kiosks", headers=hv).status_code == 200
        assert c.get("/metrics", headers=hv).status_code == 200
        r = c.post("/api/v1/kiosks/gd-0001/commands", json={"name": "reboot"}, headers=hv)
        assert r.status_code == 403
        assert c.put("/api/v1/config/fleet", json={"values": {}}, headers=hv).status_code == 403
        # A token needs no CSRF token (browsers never send it on their own); admin passes the role check.
        r = c.put("/api/v1/config/fleet", json={"values": {"volume": 500}, "dry_run": True},
                  headers={"authorization": f"Bearer {admin}"})
        assert r.status_code == 422 and "volume" in r.json()["error"]
        assert c.get("/api/v1/kiosks", headers={"authorization": "Bearer kt_bad_token"}).status_code == 401
        assert c.get("/api/v1/kiosks", headers={"authorization": "Basic abc"}).status_code == 401
        console_env.accounts.revoke_token(viewer.split("_")[1])
        assert c.get("/api/v1/kiosks", headers=hv).status_code == 401


def test_config_dry_run_returns_a_diff_and_validates(console_env, app):
    admin = console_env.accounts.create_token("automation", "admin")
    with TestClient(app) as c:
        h = {"authorization": f"Bearer {admin}"}
        r = c.put("/api/v1/config/site/site-1", json={"values": {"volume": 40}, "dry_run": True}, headers=h)
        assert r.status_code == 200, r.text
        assert r.json() == {"diff": [{"key": "volume", "op": "add", "old": None, "new": 40}], "applied": False}
        assert c.put("/api/v1/config/galaxy/x", json={"values": {}}, headers=h).status_code == 404
        assert c.put("/api/v1/config/kiosk/bad%20id", json={"values": {}}, headers=h).status_code == 422
        assert c.put("/api/v1/config/fleet", json={"values": 3}, headers=h).status_code == 422


def test_login_failures_lock_the_account_in_the_browser_flow(console_env, app):
    with TestClient(app) as c:
        for _ in range(5):
            r = c.post("/login", data={"name": "vera", "password": "wrong-password"})
            assert r.status_code == 401
        r = c.post("/login", data={"name": "vera", "password": "vera-viewer-pass"})
        assert r.status_code == 401 and "locked" in r.text
    assert any(a["action"] == "login.failed" for a in console_env.accounts.audit_trail(target="vera")["items"])


def test_login_does_not_redirect_off_site(console_env, app):
    with TestClient(app) as c:
        r = c.post("/login", data={"name": "vera", "password": "vera-viewer-pass", "next": "//evil.example/"},
                   follow_redirects=False)
        assert r.status_code == 303 and r.headers["location"] == "/fleet"


def test_pages_render_in_chinese_and_english(clients):
    v = clients["vera"]
    zh = v.get("/fleet").text
    assert "终端总览" in zh and "离线" in zh
    v.cookies.set("lang", "en")
    en = v.get("/fleet?status=offline").text
    assert "Fleet overview" in en and "gd-0000" in en and "gd-0001" not in en
    for path in ("/kiosks/gd-0001", "/alarms", "/config", "/services", "/reports", "/audit"):
        assert v.get(path).status_code == 200, path


def test_metrics_and_openapi(clients, anon):
    r = clients["vera"].get("/metrics")
    text = r.text
    assert r.headers["x-frame-options"] == "DENY"
    assert 'kiosk_fleet_kiosks{status="offline"} 6' in text
    for line in text.splitlines():  # every sample line is "name{labels} number"
        if line and not line.startswith("#"):
            float(line.rsplit(" ", 1)[1])
    assert "kiosk_console_http_requests_total" in text
    spec = anon.get("/openapi.json").json()
    assert spec["openapi"].startswith("3.") and "/api/v1/kiosks/{kiosk_id}/commands" in spec["paths"]


def test_admin_creates_and_revokes_an_api_token_in_the_page(clients, app):
    ada = clients["ada"]
    csrf = ada.headers["x-csrf-token"]
    assert clients["otto"].get("/accounts").status_code == 403
    r = ada.post("/accounts", data={"csrf": csrf, "action": "create_token", "name": "district", "role": "viewer"})
    assert r.status_code == 200
    token = r.text.split('<pre id="new-token">')[1].split("<")[0]
    with TestClient(app) as c:
        h = {"authorization": f"Bearer {token}"}
        assert c.get("/api/v1/summary", headers=h).status_code == 200
        token_id = token.split("_")[1]
        r = ada.post("/accounts", data={"csrf": csrf, "action": "revoke_token", "token_id": token_id})
        assert r.status_code == 200 and "district" in r.text
        assert c.get("/api/v1/summary", headers=h).status_code == 401
    r = ada.post("/accounts", data={"csrf": csrf, "action": "create_token", "name": "x", "role": "root"})
    assert r.status_code == 422 and "role" in r.text
    assert ada.post("/accounts", data={"csrf": "forged", "action": "unlock", "name": "vera"}).status_code == 403
