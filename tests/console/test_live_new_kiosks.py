"""Kiosks registered after the fleet page was loaded appear without a reload.

The poller announces kiosks new since the console started (``added``; pure tests below); the page
asks the API for itself again when one matches its filters and places it where the server's
sort and paging put it, or counts it in a notice when it belongs on another page. The browser test
runs a real kiosk-controller and broker; kiosks register by publishing their birth status.
"""

from __future__ import annotations

import os

import pytest

from controller.web.fleetview import FleetView
from controller.web.live import Hub, Poller
from tests.console.test_browser_e2e import ARGS, CHROMIUM, publish_retained
from tests.console.test_fleetview import Source, rec
from tests.support.console_browser import signed_in, start_controller


def recording_poller(src: Source) -> tuple[Poller, list]:
    frames: list = []
    hub = Hub()
    hub.publish = lambda event, data: frames.append((event, data))
    return Poller(FleetView(src.all, src.changed), hub, interval=0.01), frames


def test_new_kiosks_are_announced_once_and_the_first_load_is_not_news():
    src = Source([rec("k-1", t=100), rec("k-2", t=100)])
    poller, frames = recording_poller(src)
    poller.step(full=True)  # the console starts: these kiosks were there before any page
    assert "added" not in [e for e, _ in frames]
    frames.clear()
    src.records["k-0"] = rec("k-0", t=110, site="t")
    poller.step()
    assert [e for e, _ in frames] == ["kiosk", "added", "summary"]
    added = frames[1][1]
    assert added["count"] == 1 and [r["kiosk_id"] for r in added["items"]] == ["k-0"]
    assert added["items"][0]["site"] == "t" and added["items"][0]["status"] == "online"
    frames.clear()
    src.records["k-0"] = {**src.records["k-0"], "state": "offline", "state_since": 120.0}
    poller.step()  # a change of a kiosk already announced is a plain row update
    assert [e for e, _ in frames] == ["kiosk", "summary"]
    frames.clear()
    src.records["k-9"] = rec("k-9", t=130)
    poller.step(full=True)  # the periodic full read finds one the change poll missed
    assert [r["kiosk_id"] for e, d in frames if e == "added" for r in d["items"]] == ["k-9"]


def test_kiosks_of_a_fleet_that_was_empty_at_start_are_new():
    src = Source([])
    poller, frames = recording_poller(src)
    poller.step(full=True)
    assert frames == []
    src.records.update({f"k-{i}": rec(f"k-{i}", t=200 + i) for i in range(250)})
    poller.step()
    added = [d for e, d in frames if e == "added"]
    assert len(added) == 1 and added[0]["count"] == 250 and len(added[0]["items"]) == 200  # one bounded frame


def birth(broker, kiosk_id: str, site: str) -> None:
    publish_retained(broker, f"kiosk/v1/{kiosk_id}/status",
                     {"v": 1, "state": "online", "kiosk_id": kiosk_id, "boot_id": f"b-{kiosk_id}", "site": site,
                      "mode": "normal"})


@pytest.mark.skipif(not os.path.exists(CHROMIUM), reason="needs /usr/bin/chromium")
def test_new_kiosks_appear_live_where_the_page_would_put_them(broker, procs, tmp_path, artifacts):
    from playwright.sync_api import expect, sync_playwright

    url = start_controller(broker, procs, tmp_path / "controller-data")

    def ids(page):
        return page.locator("#fleet tbody tr").evaluate_all("rows => rows.map(r => r.dataset.kiosk)")

    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        try:
            ctx, page = signed_in(browser, url)

            # An empty fleet, three to a page: the first kiosks take the place of the empty-state text.
            page.goto(url + "fleet?size=3")
            expect(page.locator("#fleet-empty")).to_be_visible()
            expect(page.locator("#live")).to_have_text("Live")
            page.evaluate("window.__noReload = 'still here'")
            birth(broker, "gd-l-10", "site-north")
            expect(page.locator("#k-gd-l-10 .badge")).to_have_text("Online")
            expect(page.locator("#fleet-empty")).to_have_count(0)
            birth(broker, "gd-l-50", "site-south")
            birth(broker, "gd-l-30", "site-north")
            expect(page.locator("#fleet tbody tr")).to_have_count(3)
            assert ids(page) == ["gd-l-10", "gd-l-30", "gd-l-50"]
            expect(page.locator("#pager")).to_have_text("Page 1 of 1 (3 kiosks)")

            south = ctx.new_page()  # a second operator watches one site
            south.goto(url + "fleet?site=site-south")
            expect(south.locator("#fleet tbody tr")).to_have_count(1)
            expect(south.locator("#live")).to_have_text("Live")

            # Sorted by id, gd-l-20 belongs second on the first page and pushes gd-l-50 to page 2.
            birth(broker, "gd-l-20", "site-north")
            expect(page.locator("#fleet tbody tr").nth(1)).to_have_id("k-gd-l-20")
            assert ids(page) == ["gd-l-10", "gd-l-20", "gd-l-30"]
            expect(page.locator("#pager")).to_have_text("Page 1 of 2 (4 kiosks) Next")
            expect(page.locator("#pager a")).to_have_attribute("href", "/fleet?size=3&page=2")
            expect(page.locator('[data-count="total"]')).to_have_text("4")
            expect(page.locator("#new-kiosks")).to_be_hidden()
            page.screenshot(path=str(artifacts / "console-fleet-new-kiosk.png"), full_page=True)

            # The placed row is live like the others: the kiosk goes away and its badge follows.
            publish_retained(broker, "kiosk/v1/gd-l-20/status",
                             {"v": 1, "state": "offline", "reason": "shutdown", "boot_id": "b-gd-l-20"})
            expect(page.locator("#k-gd-l-20 .badge")).to_have_text("Offline")

            # gd-l-90 belongs on page 2: the rows stay put and a notice counts it. The site-south
            # page, filtered, gets it as a row; it never got the site-north kiosks.
            birth(broker, "gd-l-90", "site-south")
            expect(page.locator("#new-kiosks")).to_be_visible()
            expect(page.locator("#new-kiosks")).to_contain_text("1 new kiosk(s) match these filters on other pages")
            page.screenshot(path=str(artifacts / "console-fleet-new-elsewhere.png"), full_page=True)
            assert ids(page) == ["gd-l-10", "gd-l-20", "gd-l-30"]
            expect(page.locator("#pager")).to_have_text("Page 1 of 2 (5 kiosks) Next")
            expect(south.locator("#fleet tbody tr")).to_have_count(2)
            assert ids(south) == ["gd-l-50", "gd-l-90"]
            assert page.evaluate("window.__noReload") == "still here", "the page reloaded"

            # The notice's link loads this view again, as the fleet is now.
            page.click("#new-kiosks a")
            page.wait_for_function("window.__noReload === undefined")
            expect(page.locator("#new-kiosks")).to_be_hidden()
            assert page.url == url + "fleet?size=3"
            page.goto(url + "fleet?size=3&page=2")
            assert ids(page) == ["gd-l-50", "gd-l-90"]
        finally:
            browser.close()
