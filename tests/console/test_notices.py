"""Notices in step: the console lists exactly the notices the kiosks are served (the service
catalogue's defaults included, before any kiosk asked), and the operator edits and withdraws them.

The kiosk side is the service backend's own ``notices.list`` (what a kiosk's svc/request gets);
the console side is the services page. On both backends of the fleet database.
"""

from __future__ import annotations

import pytest

from contract.catalogue import load_default_document
from controller.service_backend import handle_request
from controller.web import notices, servicedb
from tests.conftest import BACKENDS

pytestmark = pytest.mark.parametrize("backend", BACKENDS)


def kiosk_sees(db, group="all"):
    conn = servicedb.open_db(db)
    try:
        reply = handle_request(conn, "gd-0001", {"service": "notices", "op": "list", "args": {"group": group}}, 0.0)
    finally:
        conn.close()
    assert reply["ok"], reply
    return {n["id"]: n for n in reply["data"]["notices"]}


def test_console_shows_the_catalogue_defaults_the_kiosks_show(console_env, clients):
    page = clients["vera"].get("/services").text  # the service tables do not exist yet
    defaults = load_default_document()["notices"]
    for n in defaults:
        assert n["titles"]["zh-CN"] in page
    assert set(kiosk_sees(console_env.db)) == {n["id"] for n in defaults}
    assert {n["id"] for n in notices.list_all(console_env.db)} == {n["id"] for n in defaults}


def test_operator_edits_and_withdraws_a_default_notice(console_env, clients):
    ada = clients["ada"]
    csrf = ada.headers["x-csrf-token"]
    form = ada.get("/services?edit=n1").text
    assert 'value="长者免费体检：每周三上午在社区卫生服务站"' in form and 'name="notice_id" required' in form
    r = ada.post("/services", data={"csrf": csrf, "action": "publish", "notice_id": "n1", "title_zh-CN": "体检改到周四",
                                    "title_zh-HK": "體檢改到週四", "title_en": "Check-up moved to Thursday",
                                    "group": ["elderly"]})
    assert r.status_code == 200 and "体检改到周四" in r.text
    assert kiosk_sees(console_env.db, "elderly")["n1"]["titles"]["en"] == "Check-up moved to Thursday"
    for n in load_default_document()["notices"]:
        assert ada.post("/services", data={"csrf": csrf, "action": "withdraw", "notice_id": n["id"]}).status_code == 200
    assert kiosk_sees(console_env.db) == {}
    # Withdrawn defaults stay withdrawn: opening the tables again does not seed them a second time.
    assert notices.list_all(console_env.db) == [] and "services.no_notices" not in ada.get("/services").text
    trail = console_env.accounts.audit_trail(action="notice.withdraw")["items"]
    assert {a["target"] for a in trail} == {f"notice:{n['id']}" for n in load_default_document()["notices"]}
