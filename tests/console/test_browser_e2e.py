"""End to end in real headless Chromium: a real kiosk-controller, broker and simulated kiosk agents.

Sign in, see the fleet, a kiosk dies and its row turns offline without a reload, acknowledge the
alarm, send a test print and see its result, open a report with its charts. Screenshots go to
the artifacts folder (console-fleet.png, console-kiosk.png, console-report.png).
"""

from __future__ import annotations

import os
import re
import signal
import sys

import pytest

from contract import signing, versions
from controller.web.accounts import Accounts
from tests.support.console_browser import OPERATOR, start_controller
from tests.support.processes import Proc

sync_api = pytest.importorskip("playwright.sync_api")

CHROMIUM = "/usr/bin/chromium"
ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
        "--disable-sync", "--no-first-run"]


def seed_service_history(data):
    """A week of resident service records (as the service backend stores them) for the report."""
    import json
    import sqlite3
    import time

    from controller.service_backend.tables import ensure_schema
    from controller.store import DB_NAME, Store

    Store(data).close()
    conn = sqlite3.connect(data / DB_NAME)
    ensure_schema(conn)
    now = time.time()
    with conn:
        for day in range(7):
            ts = now - day * 86400 - 60
            for i in range(3 + day % 3):
                kiosk = ("gd-e2e-print", "gd-e2e-down")[i % 2]
                conn.execute("INSERT INTO svc_ratings (kiosk_id, service, stars, tags, created) VALUES (?,?,?,?,?)",
                             (kiosk, ("queue_ticket", "certificate", "appointment")[i % 3], 3 + (i + day) % 3,
                              json.dumps(["fast"] if i % 2 else ["clear", "polite"]), ts))
                conn.execute("INSERT INTO svc_tickets (kiosk_id, day, counter, number, seq, issued_at) "
                             "VALUES (?,?,?,?,?,?)", (kiosk, f"d{day}", "general", f"A{i:03d}", i + 1, ts))
            conn.execute("INSERT INTO svc_feedback (ref, kiosk_id, category, urgency, created) VALUES (?,?,?,?,?)",
                         (f"FB{day}", "gd-e2e-print", ("environment", "service", "facility")[day % 3], "normal", ts))
    conn.close()


def publish_retained(broker, topic, body):
    import json

    import paho.mqtt.client as mqtt

    c = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, protocol=mqtt.MQTTv5)
    c.connect("127.0.0.1", broker.port)
    c.loop_start()
    c.publish(topic, json.dumps(body), 1, True).wait_for_publish(5)
    c.loop_stop()
    c.disconnect()


def signed_in_page(browser, url, name, password):
    """A Chinese-locale page of the console at ``url``, signed in as ``name``, on the fleet page."""
    page = browser.new_page(locale="zh-CN", viewport={"width": 1280, "height": 860})
    page.set_default_timeout(15000)
    page.goto(url)
    page.fill("input[name=name]", name)
    page.fill("input[name=password]", password)
    page.click("button[type=submit]")
    page.wait_for_url("**/fleet")
    return page


def start_agent(broker, tmp_path, kiosk_id, key, site):
    return Proc([sys.executable, "-m", "kiosk_ui.agent.cli", "--broker", broker.url, "--kiosk-id", kiosk_id,
                 "--site", site, "--simulated", "--data-dir", str(tmp_path / kiosk_id), "--telemetry-interval", "1",
                 "--keepalive", "2", "--controller-public-key", key])


@pytest.mark.skipif(not os.path.exists(CHROMIUM), reason="needs /usr/bin/chromium")
def test_operator_console_in_a_real_browser(broker, procs, tmp_path, artifacts):
    data = tmp_path / "controller-data"
    key = signing.public_key_text(signing.load_or_create_key(data, None))
    acc = Accounts(data)
    acc.add_user("otto", "operator", "otto-operator-pw")
    acc.close()
    seed_service_history(data)
    ctl = Proc([sys.executable, "-m", "controller.cli", "--broker", broker.url, "--data-dir", str(data),
                "--http", "127.0.0.1:0", "--telemetry-period", "5"])
    procs.append(ctl)
    url = ctl.wait_for("console http://", timeout=20).split(" ", 1)[1].strip()
    doomed = start_agent(broker, tmp_path, "gd-e2e-down", key, "site-north")
    procs.append(doomed)
    printer = start_agent(broker, tmp_path, "gd-e2e-print", key, "site-south")
    procs.append(printer)
    doomed.wait_for("kiosk gd-e2e-down online", timeout=20)
    printer.wait_for("kiosk gd-e2e-print online", timeout=20)

    with sync_api.sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        try:
            page = signed_in_page(browser, url, "otto", "otto-operator-pw")
            row = page.locator("#k-gd-e2e-down")
            sync_api.expect(row.locator(".badge")).to_have_text("在线")
            sync_api.expect(page.locator("#k-gd-e2e-print .badge")).to_have_text("在线")
            sync_api.expect(page.locator("#live")).not_to_have_class("live down")
            page.evaluate("window.__noReload = 'still here'")
            page.screenshot(path=str(artifacts / "console-fleet.png"), full_page=True)

            # The kiosk dies without a goodbye: the broker's will marks it offline; the row follows live.
            os.killpg(doomed.proc.pid, signal.SIGKILL)
            sync_api.expect(row.locator(".badge")).to_have_text("离线", timeout=20000)
            sync_api.expect(row).to_have_class("st-offline")
            north = page.locator("aside.sites tr", has_text="site-north")
            sync_api.expect(north.locator("td.st-offline")).to_have_text("1")
            sync_api.expect(page.locator("#alarm-count")).to_have_text(re.compile(r"^[1-9][0-9]*$"), timeout=20000)
            assert page.evaluate("window.__noReload") == "still here", "the page reloaded"
            sync_api.expect(page.locator('[data-count="offline"]')).to_have_text("1")
            sync_api.expect(page.locator("#k-gd-e2e-print .badge")).to_have_text("在线")
            page.screenshot(path=str(artifacts / "console-fleet-offline.png"), full_page=True)

            # The offline alarm: acknowledge it with a note.
            page.goto(url + "alarms")
            alarm = page.locator("tr[data-alarm]", has_text="gd-e2e-down").first
            sync_api.expect(alarm).to_be_visible(timeout=20000)
            alarm.locator("input[name=note]").fill("technician on the way")
            alarm.locator("button").click()
            sync_api.expect(page.locator("tr[data-alarm]", has_text="gd-e2e-down").first.locator(".acked")) \
                .to_contain_text("otto")
            page.screenshot(path=str(artifacts / "console-alarms.png"), full_page=True)

            # A test print on the live kiosk, confirmed in a dialog, with the kiosk's result shown.
            page.goto(url + "kiosks/gd-e2e-print")
            page.once("dialog", lambda d: d.accept())
            page.click("button[data-cmd=test_print]")
            result = page.locator("#cmd-result")
            sync_api.expect(result).to_have_attribute("data-status", "succeeded", timeout=30000)
            sync_api.expect(result).to_contain_text("成功")
            page.screenshot(path=str(artifacts / "console-kiosk.png"), full_page=True)
            page.reload()
            sync_api.expect(page.locator("#commands table")).to_contain_text("测试打印")

            # The printer runs out of paper (its retained device status, as the kiosk publishes it):
            # the device table and the status badge follow without reload.
            publish_retained(broker, "kiosk/v1/gd-e2e-print/devices/printer",
                             {"v": 1, "state": "error", "detail": "paper_out", "required_action": "load paper"})
            sync_api.expect(page.locator("#devices")).to_contain_text("装入新纸卷", timeout=20000)  # load_paper, in words
            sync_api.expect(page.locator("#kstatus")).to_have_text("功能降级")

            # The report, with its charts as images that actually load.
            page.goto(url + "reports")
            charts = page.locator("img.chart")
            sync_api.expect(charts.first).to_be_visible()
            page.wait_for_function("[...document.querySelectorAll('img.chart')].every(i => i.complete)")
            widths = page.evaluate("[...document.querySelectorAll('img.chart')].map(i => i.naturalWidth)")
            assert len(widths) >= 4 and all(w > 0 for w in widths), widths  # usage, trend, topics, availability
            assert page.locator("#sat-index").inner_text() != "–"
            sync_api.expect(page.locator("body")).to_contain_text("gd-e2e-down")
            page.screenshot(path=str(artifacts / "console-report.png"), full_page=True)
            csv = page.request.get(url + "reports/report.csv")
            assert csv.ok and "availability_pct,gd-e2e-down" in csv.text()
        finally:
            browser.close()


@pytest.mark.skipif(not os.path.exists(CHROMIUM), reason="needs /usr/bin/chromium")
def test_a_hong_kong_browser_gets_the_console_in_traditional_chinese(broker, procs, tmp_path, artifacts):
    """A browser set to zh-HK gets Traditional Chinese in Hong Kong's words from the first page;
    the header's links switch to Simplified and back, and the choice is remembered. The kiosk page
    says which contract version the kiosk's own birth announced."""
    data = tmp_path / "controller-data"
    key = signing.public_key_text(signing.load_or_create_key(data, None))
    url = start_controller(broker, procs, data)
    kiosk = start_agent(broker, tmp_path, "gd-hk-01", key, "site-hk")
    procs.append(kiosk)
    kiosk.wait_for("kiosk gd-hk-01 online", timeout=20)

    with sync_api.sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        try:
            page = browser.new_page(locale="zh-HK", viewport={"width": 1280, "height": 860})
            page.set_default_timeout(15000)
            page.goto(url)
            sync_api.expect(page.locator("html")).to_have_attribute("lang", "zh-HK")
            sync_api.expect(page.locator("h1")).to_have_text("登入")  # HK's word, not 登錄
            page.fill("input[name=name]", OPERATOR[0])
            page.fill("input[name=password]", OPERATOR[1])
            page.click("button[type=submit]")
            page.wait_for_url("**/fleet")
            sync_api.expect(page.locator("h1")).to_contain_text("終端總覽")
            sync_api.expect(page.locator("#k-gd-hk-01 .badge")).to_have_text("在線", timeout=20000)
            sync_api.expect(page.locator("header nav")).to_contain_text("審計記錄")
            sync_api.expect(page.locator("header form button")).to_have_text("登出")
            page.screenshot(path=str(artifacts / "console-fleet-zh-hk.png"), full_page=True)

            # The header offers the other two languages, each in its own words.
            links = page.locator("header a.lang")
            sync_api.expect(links).to_have_text(["简体中文", "English"])
            page.click("header a.lang[lang=zh-CN]")
            sync_api.expect(page.locator("h1")).to_contain_text("终端总览")
            sync_api.expect(links).to_have_text(["繁體中文", "English"])
            page.click("header a.lang[lang=zh-HK]")
            sync_api.expect(page.locator("h1")).to_contain_text("終端總覽")
            page.goto(url + "alarms")  # remembered (the cookie), not only on the page switched
            sync_api.expect(page.locator("h1")).to_have_text("警報")

            page.goto(url + "kiosks/gd-hk-01")
            sync_api.expect(page.locator("dt", has_text="通訊協定版本")).to_be_visible()
            sync_api.expect(page.locator("#contract")).to_have_text(versions.CURRENT)
            page.screenshot(path=str(artifacts / "console-kiosk-zh-hk.png"), full_page=True)
        finally:
            browser.close()
