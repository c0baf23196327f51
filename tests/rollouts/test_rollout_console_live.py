"""The roll-out page is live: wave counts, status and each kiosk's state and reason follow the
roll-out store over the console's SSE stream (controller/web/rollout_live.py), without a reload.

The browser test runs a real kiosk-controller, broker and Chromium; the kiosk's ``update/state``
is built by the contract's builder (contract/updates.py, as the kiosk agent builds it) and
published over MQTT, and the roll-out is made with kioskctl, as an operator makes it.
"""

from __future__ import annotations

import contextlib
import io
import json
import os
import time

import paho.mqtt.client as mqtt
import pytest

from contract import topics as fleet
from contract import updates
from controller import ctl
from controller import rollouts as RO
from controller.rollout_store import RolloutStore
from controller.web.rollout_live import RolloutWatch
from tests.console.test_browser_e2e import ARGS, CHROMIUM, publish_retained
from tests.fleet.conftest import wait_until
from tests.rollouts.test_rollout_decisions import REL, online, st
from tests.rollouts.test_rollout_decisions import fleet as sim_fleet
from tests.support.console_browser import signed_in, start_controller
from tests.updates.probe import Releases


class Frames:
    def __init__(self) -> None:
        self.items: list[tuple[str, dict]] = []

    def publish(self, event: str, data: dict) -> None:
        self.items.append((event, json.loads(json.dumps(data))))


def test_each_change_is_one_frame_with_the_kiosks_that_changed(tmp_path):
    store = RolloutStore(tmp_path)
    r = RO.plan(RO.new_rollout("r1", REL, created_by="a", now=0, canary=2, waves=[100], failure_budget=1.0), sim_fleet(6), {})
    store.create(r)
    hub = Frames()
    watch = RolloutWatch(store, hub)
    watch._prime()
    assert watch.step() == 0 and hub.items == []  # what pages already show is not news
    r, eff = store.mutate("r1", lambda cur: RO.tick(cur, 1, online(cur)))
    assert watch.step() == 1
    event, frame = hub.items[-1]
    assert event == "rollout" and frame["status"] == "running" and frame["wave"] == 0
    assert sorted(frame["kiosks"]) == sorted(k for _, k in eff)  # the two canaries only
    assert all(k["state"] == "sent" for k in frame["kiosks"].values())
    assert frame["progress"][0] == {"wave": 0, "canary": True, "total": 2, "pending": 0, "open": 2, "succeeded": 0,
                                    "failed": 0, "skipped": 0}
    assert watch.step() == 0  # nothing new
    kid = eff[0][1]
    store.mutate("r1", lambda cur: RO.on_update_state(cur, kid, st("rolled_back", "crashed: exit 1"), 2, online(cur)))
    watch.step()
    frame = hub.items[-1][1]
    crashed = {"code": "kiosk", "params": {"id": "crashed", "detail": "exit 1"}}
    assert frame["kiosks"] == {kid: {"wave": 0, "state": "rolled_back", "reason": crashed, "reason_text": {
        "zh-CN": {"text": "新版本崩溃", "code": "", "detail": "exit 1"},
        "zh-HK": {"text": "新版本當機", "code": "", "detail": "exit 1"},
        "en": {"text": "the new release crashed", "code": "", "detail": "exit 1"}}}}
    assert frame["status"] == "paused" and frame["reason"]["code"] == "error_threshold"
    assert frame["reason_text"]["en"]["text"].startswith("wave 0: 1 of 2 kiosks failed")
    assert frame["reason_text"]["zh-CN"]["text"].startswith("第 0 批：2 台中 1 台失败")
    assert frame["reason_text"]["zh-HK"]["text"].startswith("第 0 批：2 部中 1 部失敗")
    # A roll-out created after the watch started is news with all its kiosks.
    store.create(RO.plan(RO.new_rollout("r2", REL, created_by="a", now=5, canary=0, waves=[100]), sim_fleet(3), {}))
    watch.step()
    assert hub.items[-1][1]["id"] == "r2" and len(hub.items[-1][1]["kiosks"]) == 3


def test_a_big_change_is_sent_over_several_bounded_frames(tmp_path):
    store = RolloutStore(tmp_path)
    store.create(RO.plan(RO.new_rollout("r1", REL, created_by="a", now=0, canary=0, waves=[100], max_in_flight=25,
                                        failure_budget=1.0),
                         sim_fleet(40), {}))
    hub = Frames()
    watch = RolloutWatch(store, hub, max_kiosks=10)
    watch._prime()
    watch.step()
    store.mutate("r1", lambda cur: RO.tick(cur, 1, online(cur)))  # 25 kiosks sent at once
    assert [watch.step() for _ in range(4)] == [1, 1, 1, 0]
    sizes = [len(f["kiosks"]) for _, f in hub.items]
    assert sizes == [10, 10, 5]
    assert set().union(*(f["kiosks"] for _, f in hub.items)) == set(store.get("r1")["kiosks"]) - {
        kid for kid, k in store.get("r1")["kiosks"].items() if k["state"] == "pending"}


def publish_state(broker, kiosk_id: str, state: str, rollout: str, reason: str = "") -> None:
    c = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, protocol=mqtt.MQTTv5)
    c.connect("127.0.0.1", broker.port)
    c.loop_start()
    body = updates.state(kiosk_id, state=state, version="2.0.0", ts=time.time(), reason=reason,
                         running="2.0.0" if state == "committed" else "1.0.0", rollout=rollout)
    c.publish(fleet.topic(kiosk_id, "update/state"), fleet.encode(body), *fleet.FLAGS["update/state"]).wait_for_publish(5)
    c.loop_stop()
    c.disconnect()


def kioskctl(data, *argv: str) -> dict:
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        assert ctl.main(["--data-dir", str(data), "--user", "otto", "--json", *argv]) == 0
    return json.loads(out.getvalue())


@pytest.mark.skipif(not os.path.exists(CHROMIUM), reason="needs /usr/bin/chromium")
def test_the_rollout_page_follows_a_kiosks_update_without_reload(broker, procs, tmp_path, artifacts):
    from playwright.sync_api import expect, sync_playwright

    data = tmp_path / "controller-data"
    url = start_controller(broker, procs, data)
    for kid in ("gd-r-1", "gd-r-2"):
        publish_retained(broker, f"kiosk/v1/{kid}/status",
                         {"v": 1, "state": "online", "kiosk_id": kid, "boot_id": f"b-{kid}", "site": "s",
                          "mode": "normal", "versions": {"release": "1.0.0"}})
    wait_until(lambda: len(kioskctl(data, "status", "--state", "online")) == 2, 20, "both kiosks online")
    rel = Releases(tmp_path / "rel", int(time.time()))
    kioskctl(data, "releases", "publish", str(rel.bundle("2.0.0")))
    # No --base-url: kioskctl takes the address the running controller serves releases at.
    r = kioskctl(data, "rollout", "create", "2.0.0", "--id", "r-live", "--canary", "1", "--waves", "100")
    assert r["url"] == f"{url}releases/kiosk/2.0.0"
    canary = next(k for k, v in r["kiosks"].items() if v["wave"] == 0)
    other = next(k for k in r["kiosks"] if k != canary)

    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        try:
            ctx, page = signed_in(browser, url)
            page.goto(url + "rollouts/r-live")
            # The list of roll-outs follows too, here in Chinese: one stream serves pages of both languages.
            ctx.add_cookies([{"name": "lang", "value": "zh-CN", "url": url}])
            index = ctx.new_page()
            index.goto(url + "rollouts")
            listed = index.locator('tr[data-rollout="r-live"]')
            expect(listed.locator(".status")).to_have_text("进行中")
            expect(page.locator("#live")).to_have_text("Live")
            row = page.locator(f'tr[data-kiosk="{canary}"]')
            expect(row.locator(".state")).to_have_text("sent")
            budget = "Failure budget: {} of 1 kiosks failed; failed or updating: 1 (0.5% of the roll-out's 2 kiosks, at least 1)"
            expect(page.locator("#ro-budget")).to_have_text(budget.format(0))
            page.evaluate("window.__noReload = 'still here'")

            publish_state(broker, canary, "downloading", "r-live")
            expect(row.locator(".state")).to_have_text("downloading")
            expect(page.locator('#w-0 [data-n="open"]')).to_have_text("1")
            publish_state(broker, canary, "committed", "r-live")
            expect(row.locator(".state")).to_have_text("committed")
            expect(page.locator('#w-0 [data-n="succeeded"]')).to_have_text("1")
            # The canary committed: wave 1 opens, its kiosk is sent the update, the page follows.
            expect(page.locator("#ro-wave")).to_have_text("current wave 1")
            other_row = page.locator(f'tr[data-kiosk="{other}"]')
            expect(other_row.locator(".state")).to_have_text("sent")
            publish_state(broker, other, "rolled_back", "r-live", "crashed: exit status 1")
            expect(other_row.locator(".reason")).to_have_text("the new release crashed exit status 1")
            expect(other_row.locator(".reason code.id")).to_have_text("exit status 1")
            expect(other_row.locator(".state")).to_have_text("rolled back")
            expect(page.locator("#ro-status")).to_have_text("paused")
            expect(page.locator("#ro-reason")).to_contain_text("wave 1: 1 of 1 kiosks failed")
            expect(page.locator('#w-1 [data-n="failed"]')).to_have_text("1")
            expect(page.locator("#ro-budget")).to_have_text(budget.format(1))  # the live frame's budget
            assert page.evaluate("window.__noReload") == "still here"
            expect(listed.locator(".status")).to_have_text("已暂停")
            expect(listed.locator(".waves")).to_have_text("0: 1/1 1: 0/1 ✗1")
            expect(listed.locator(".reason")).to_contain_text("第 1 批：1 台中 1 台失败（错误阈值为该批的 5.0%")
            page.screenshot(path=str(artifacts / "console-rollout-live.png"), full_page=True)
        finally:
            browser.close()
