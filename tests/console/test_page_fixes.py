"""The console's pages behave as an operator expects, in real Chromium on a real kiosk-controller:

- the config page's changes table has headers, and after Apply the diff and the button go away;
- a kiosk that never reported its config says "nothing reported yet", not "v– in sync";
- events and command results read as fields, not JSON;
- the site panel has headers; the fleet counts follow the site filter, also when they update live;
- live times are in the fleet's time zone even when the browser is elsewhere;
- no request of any page answers 404 (the favicon included).
"""

from __future__ import annotations

import os
import signal
import sys
import time
from datetime import datetime

import pytest

from contract import signing
from controller.fleet_clock import FleetClock
from controller.web.accounts import Accounts
from tests.console.test_browser_e2e import ARGS, CHROMIUM, start_agent
from tests.support.processes import Proc
from tests.support.waiting import wait_until

sync_api = pytest.importorskip("playwright.sync_api")


@pytest.mark.skipif(not os.path.exists(CHROMIUM), reason="needs /usr/bin/chromium")
def test_pages_in_a_real_browser(broker, procs, tmp_path):
    data = tmp_path / "controller-data"
    key = signing.public_key_text(signing.load_or_create_key(data, None))
    acc = Accounts(data)
    acc.add_user("ada", "admin", "ada-admin-password")
    acc.close()
    ctl = Proc([sys.executable, "-m", "controller.cli", "--broker", broker.url, "--data-dir", str(data),
                "--http", "127.0.0.1:0", "--telemetry-period", "5"])
    procs.append(ctl)
    url = ctl.wait_for("console http://", timeout=20).split(" ", 1)[1].strip()
    agents = {}
    for kiosk_id, site in (("gd-n-1", "north"), ("gd-n-2", "north"), ("gd-s-1", "south")):
        agents[kiosk_id] = start_agent(broker, tmp_path, kiosk_id, key, site)
        procs.append(agents[kiosk_id])
    for kiosk_id, proc in agents.items():
        proc.wait_for(f"kiosk {kiosk_id} online", timeout=20)
    missing = []

    with sync_api.sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        try:
            # The browser is in New York; the fleet (and so every time shown) is in Asia/Shanghai.
            page = browser.new_page(locale="zh-CN", timezone_id="America/New_York")
            page.set_default_timeout(15000)
            page.on("response", lambda r: missing.append(r.url) if r.status == 404 else None)
            page.goto(url)
            page.fill("input[name=name]", "ada")
            page.fill("input[name=password]", "ada-admin-password")
            page.click("button[type=submit]")
            page.wait_for_url("**/fleet")

            # A kiosk that has not reported a config yet (nothing was ever set).
            page.goto(url + "kiosks/gd-s-1")
            sync_api.expect(page.locator("#config-state")).to_contain_text("尚未报告配置")
            sync_api.expect(page.locator("#config-state")).not_to_contain_text("v–")
            sync_api.expect(page.locator("#events tbody tr").first).to_be_visible()
            assert "{" not in page.locator("#events").inner_text()

            # Config: preview shows a table with headers; apply leaves no diff and no Apply button.
            page.goto(url + "config")
            page.fill("textarea[name=text]", '{"volume": 35}')
            page.click("button[value=preview]")
            sync_api.expect(page.locator("#config-diff thead th")).to_have_count(4)
            page.click("button[value=apply]")
            sync_api.expect(page.locator("p.result")).to_be_visible()
            sync_api.expect(page.locator("#config-diff")).to_have_count(0)
            sync_api.expect(page.locator("button[value=apply]")).to_have_count(0)
            # The kiosk page is drawn once (not live): load it again until the kiosk has reported.
            def applied() -> bool:
                page.goto(url + "kiosks/gd-s-1")
                return "已应用" in page.locator("#config-state").inner_text()

            wait_until(applied, 20, "gd-s-1 reported the applied config", interval=0.5)

            # The fleet filtered by a site counts that site only, and keeps doing so live.
            page.goto(url + "fleet?site=north")
            sync_api.expect(page.locator("#sites thead th")).to_have_count(5)
            sync_api.expect(page.locator('[data-count="total"]')).to_have_text("2")
            sync_api.expect(page.locator('[data-count="online"]')).to_have_text("2")
            os.killpg(agents["gd-s-1"].proc.pid, signal.SIGKILL)  # a change elsewhere in the fleet
            os.killpg(agents["gd-n-2"].proc.pid, signal.SIGKILL)  # and one at this site
            sync_api.expect(page.locator("#k-gd-n-2 .badge")).to_have_text("离线", timeout=20000)
            sync_api.expect(page.locator('[data-count="offline"]')).to_have_text("1", timeout=20000)
            sync_api.expect(page.locator('[data-count="total"]')).to_have_text("2")

            # A live row's time is the fleet's clock, not the browser's (13 hours apart).
            seen = page.locator("#k-gd-n-1 .seen")
            page.evaluate("() => { document.querySelector('#k-gd-n-1 .seen').textContent = ''; }")
            os.killpg(agents["gd-n-1"].proc.pid, signal.SIGKILL)  # its row is updated live
            sync_api.expect(page.locator("#k-gd-n-1 .badge")).to_have_text("离线", timeout=20000)
            shown = datetime.strptime(seen.inner_text(), "%Y-%m-%d %H:%M:%S").replace(tzinfo=FleetClock().tz)
            assert abs(shown.timestamp() - time.time()) < 120, seen.inner_text()
        finally:
            browser.close()
    assert [u for u in missing if "favicon" in u or "/static/" in u] == []
    assert missing == []
