"""The console's roll-out pages (the fleet database on SQLite and on PostgreSQL) show reasons in
the operator's language (zh-CN by default, zh-HK, en): a roll-out paused on errors, the kiosks'
reasons as the real contract carries them, and roll-outs an older controller stored with
sentences (read back as codes, or shown as they are, escaped)."""

from __future__ import annotations

import dataclasses
import json
import re
import urllib.error
import urllib.request

import pytest

from contract import updates
from controller import rollout_job
from controller import rollouts as RO
from controller.fleet_db import FleetDb
from controller.web import rollout_api, rollout_pages
from controller.web.accounts import Accounts
from controller.web.serve import start_console
from tests.conftest import BACKENDS
from tests.console.test_every_page_translated import untranslated

REL = {"version": "2.0.0", "url": "https://ctl.example/releases/kiosk/2.0.0", "manifest_sha256": "a" * 64}


pytestmark = pytest.mark.parametrize("backend", BACKENDS)


@pytest.fixture
def console(make_controller, fleet_database):
    ctl = make_controller(database=fleet_database)
    job = rollout_job.for_controller(ctl, base_url="")
    server, url = start_console(ctl, dataclasses.replace(ctl.config, http="127.0.0.1:0"),
                                extra_routes=(*rollout_api.routes(job), *rollout_pages.routes(job)))
    accounts = Accounts(ctl.config.data_dir, fleet_db=FleetDb.from_config(ctl.config))
    yield job, url, accounts.create_token("view", "viewer"), accounts.create_token("op", "operator")
    server.stop()


def page(url: str, token: str, path: str, lang: str | None = None) -> str:
    headers = {"authorization": f"Bearer {token}", "accept": "text/html", **({"accept-language": lang} if lang else {})}
    with urllib.request.urlopen(urllib.request.Request(url.rstrip("/") + path, headers=headers), timeout=10) as resp:
        return resp.read().decode()


def reasons(html: str) -> list[str]:
    """The reason cells of a roll-out page (the list's, the roll-out's and each kiosk's)."""
    return re.findall(r'(?s)<(?:td class="reason"|span id="ro-reason")>(.*?)</(?:td|span)>', html)


def kiosk_said(kid: str, state: str, reason: str) -> updates.UpdateState:
    """A kiosk's update/state as the contract builds and parses it."""
    return updates.parse_state(updates.state(kid, state=state, version="2.0.0", ts=1.0, reason=reason,
                                             rollout="r-bad"))


def test_a_paused_rollouts_reasons_in_chinese_and_english(console):
    job, url, token, _ = console
    fleet = [{"kiosk_id": f"K{i}", "state": "online", "site": "s", "versions": {"release": "1.0.0"}} for i in range(4)]
    r = RO.plan(RO.new_rollout("r-bad", REL, created_by="a", now=0, canary=0, waves=[100], error_threshold=0.5,
                               failure_budget=1.0), fleet, {})
    online = set(r["kiosks"])
    r, _ = RO.tick(r, 1, online)
    r, _ = RO.on_update_state(r, "K0", kiosk_said("K0", "rolled_back", "crashed: exit status 1"), 2, online)
    r, _ = RO.on_update_state(r, "K1", kiosk_said("K1", "failed", "flux_capacitor: <script>x</script>"), 3, online)
    job.store.create(r)
    assert job.store.get("r-bad")["status"] == "paused"

    zh_list, zh_one = page(url, token, "/rollouts"), page(url, token, "/rollouts/r-bad")
    assert "第 0 批：4 台中 2 台失败（错误阈值为该批的 50.0%，至少 1 台：2 台）" in zh_list
    assert "第 0 批：4 台中 2 台失败" in zh_one and '新版本崩溃 <code class="id">exit status 1</code>' in zh_one
    # A reason id this console has no text for: the code, escaped, never markup.
    assert ('<code class="id">flux_capacitor</code> <code class="id">&lt;script&gt;x&lt;/script&gt;</code>'
            in zh_one) and "<script>x" not in zh_one
    en_one = page(url, token, "/rollouts/r-bad", "en")
    assert "wave 0: 2 of 4 kiosks failed (error threshold 50.0% of the wave, at least 1: 2 kiosks)" in en_one
    assert 'the new release crashed <code class="id">exit status 1</code>' in en_one
    assert "error_threshold" not in zh_one + en_one and "roreason." not in zh_one + en_one
    # The console's own rule for every page (tests/console/test_every_page_translated.py), on every reason
    # shown: no id and no English word in Chinese, no id in English.
    en_list = page(url, token, "/rollouts", "en")
    # Hong Kong Traditional Chinese, in its own words (部 for machines, 門檻, 當機).
    hk_one = page(url, token, "/rollouts/r-bad", "zh-HK")
    assert "第 0 批：4 部中 2 部失敗（錯誤門檻為該批的 50.0%，最少 1 部：2 部）" in hk_one
    assert '新版本當機 <code class="id">exit status 1</code>' in hk_one
    for html, lang in ((zh_list, "zh-CN"), (zh_one, "zh-CN"), (en_list, "en"), (en_one, "en"), (hk_one, "zh-HK")):
        shown = reasons(html)
        assert len(shown) == (5 if html in (zh_one, en_one, hk_one) else 1) and untranslated(" ".join(shown), lang) == []
    api = json.loads(urllib.request.urlopen(urllib.request.Request(
        url.rstrip("/") + "/api/v1/rollouts/r-bad", headers={"authorization": f"Bearer {token}"}), timeout=10).read())
    assert api["reason"]["code"] == "error_threshold" and api["kiosks"]["K0"]["reason"]["params"]["id"] == "crashed"


def test_a_rollout_stored_with_sentences_by_an_older_controller_still_shows(console):
    job, url, token, _ = console
    db = job.store.db.connect()
    body = {"id": "r-old", "version": "2.0.0", "status": "paused", "wave": 2, "wave_count": 3, "canary": 1,
            "reason": "wave 2: 4 of 346 kiosks failed (error threshold 1.0% of the wave, at least 1: 4 kiosks)"}
    with db:  # the fleet database's roll-out tables, as an older controller wrote them
        db.execute("INSERT INTO rollouts (id, version, status, rev, created_at, body) VALUES ('r-old', '2.0.0',"
                   " 'paused', 3, 1, ?)", (json.dumps(body),))
        db.executemany("INSERT INTO rollout_kiosks VALUES ('r-old', ?, 2, ?, ?, '1.0.0', 1, 1)", [
            ("K-a", "rolled_back", "no_broker: no broker signal 61 s after the switch"),
            ("K-b", "skipped", "offline when its wave started"),
            ("K-c", "failed", "<b>kiosk said so</b>")])
    db.close()
    zh = page(url, token, "/rollouts/r-old")
    assert "第 2 批：346 台中 4 台失败（错误阈值为该批的 1.0%，至少 1 台：4 台）" in zh
    assert "新版本未按时连上消息服务器" in zh and "所在批次开始时离线" in zh
    assert '<code class="id">&lt;b&gt;kiosk said so&lt;/b&gt;</code>' in zh
    en = page(url, token, "/rollouts", "en")
    assert "wave 2: 4 of 346 kiosks failed (error threshold 1.0% of the wave, at least 1: 4 kiosks)" in en


def test_a_refused_action_says_why_in_the_operators_language(console):
    job, url, _, operator = console
    fleet = [{"kiosk_id": "K0", "state": "online", "site": "s", "versions": {"release": "1.0.0"}}]
    job.store.create(RO.pause(RO.plan(RO.new_rollout("r-p", REL, created_by="a", now=0, canary=0, waves=[100]),
                                      fleet, {}), "field report"))

    def post(action: str, lang: str) -> str:
        req = urllib.request.Request(f"{url.rstrip('/')}/rollouts/r-p/{action}", data=b"reason=", method="POST",
                                     headers={"authorization": f"Bearer {operator}", "accept-language": lang,
                                              "content-type": "application/x-www-form-urlencoded"})
        with pytest.raises(urllib.error.HTTPError) as err:
            urllib.request.urlopen(req, timeout=10)
        assert err.value.code == 409
        return err.value.read().decode()

    assert "未执行：发布已暂停时不能“批准下一批”。" in post("approve", "zh-CN")
    assert "Not done: “Approve next wave” is not possible while the roll-out is paused." in post("approve", "en")
    assert "未执行：没有失败或超时的自助机可重试。" in post("retry", "zh-CN")
    shown = page(url, operator, "/rollouts/r-p")
    assert '由操作员暂停 <code class="id">field report</code>' in shown
    job.action("r-p", "abort", "ops", "bad field reports")  # done: its row is worded too
    # The audit log keeps each refusal as a code and its parameters; its page words them.
    audit = job.store.db.connect()
    try:
        rows = [tuple(r) for r in audit.execute(
            "SELECT action, result, detail FROM audit WHERE target = 'r-p' ORDER BY id")]
    finally:
        audit.close()
    assert [(a, res, json.loads(d)) for a, res, d in rows] == [
        ("rollout_approve", "refused: not_in_status", {"rollout_action": "approve", "rollout_status": "paused"}),
        ("rollout_approve", "refused: not_in_status", {"rollout_action": "approve", "rollout_status": "paused"}),
        ("rollout_retry", "refused: nothing_to_retry", {}),
        ("rollout_abort", "ok", {"rollout_status": "aborted", "wave": 0, "note": "bad field reports"})]
    zh = page(url, operator, "/audit?target=r-p")
    assert "批准发布批次" in zh and "已拒绝：发布当前状态下不可执行" in zh and "操作：批准下一批" in zh
    assert "发布状态：已暂停" in zh and "已拒绝：没有失败或超时的自助机可重试" in zh and "cannot" not in zh
    assert "中止发布" in zh and "发布状态：已中止" in zh and "批次：0" in zh and "bad field reports" in zh
    en = page(url, operator, "/audit?target=r-p", "en")
    assert "roll-out wave approved" in en and "refused: not possible in the roll-out&#39;s status" in en
    assert "roll-out status: paused" in en
