"""An operator's day on the demo fleet as it ships, in real Chromium.

The fleet starts as the README starts it, ``scripts/demo`` (init-fleet, mutual-TLS broker, enrolled
kiosks, the Kivy kiosk window under this test's X display). Then, as an operator would: sign in,
every kiosk online and none degraded, a test print on every kiosk from its console page (a
receipt appears), paper out on a headless kiosk and on the Kivy kiosk (each raises exactly one
``paper_out`` alarm, acknowledged with a note, cleared when the paper is back), a config change
applied and reported by every kiosk, the report counting each fault once, and the audit log
holding every step.

Assertions that need other work in issue 13 to pass (marked ``# needs:`` below): the Kivy kiosk
not degraded at start and its paper out raising ``paper_out`` (the contract's device status
shape), one fault giving one alarm and one failure in the report (the alarm rules), and the
console's single audit log with the kioskctl steps in it (audit unification).
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from controller.web.i18n import Translator
from tests.support.broker import free_port
from tests.support.processes import REPO, Proc
from tests.support.waiting import wait_until
from tests.support.xvfb import Xvfb

sync_api = pytest.importorskip("playwright.sync_api")

CHROMIUM = "/usr/bin/chromium"
ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
        "--disable-sync", "--no-first-run"]
BIN = os.path.dirname(sys.executable)
HEADLESS = ["GD-DEMO-0001", "GD-DEMO-0002", "GD-DEMO-0003"]
WINDOW = "GD-DEMO-WINDOW"
KIOSKS = [*HEADLESS, WINDOW]
PASSWORD = "demo-admin-password"


class Demo:
    """The demo fleet started as scripts/demo starts it, and the tools an operator runs beside it."""

    def __init__(self, tmp_path: Path, procs: list, display: str) -> None:
        self.data = tmp_path / "demo"
        self.http = f"127.0.0.1:{free_port()}"
        self.proc = Proc([str(REPO / "scripts" / "demo"), "--data-dir", str(self.data),
                          "--mqtt-port", str(free_port()), "--http", self.http, "--telemetry-interval", "5"],
                         env={"DISPLAY": display})
        procs.append(self.proc)
        self.proc.wait_for(lambda s: "Press Ctrl-C" in s, timeout=120)
        self.url = f"http://{self.http}/"

    def ctl(self, *args: str) -> subprocess.CompletedProcess:
        return subprocess.run([os.path.join(BIN, "kioskctl"), "--data-dir", str(self.data / "controller"), *args],
                              capture_output=True, text=True, timeout=60, env={**os.environ, "KIOSKCTL_USER": "ops"})

    def ctl_json(self, *args: str):
        r = self.ctl(*args, "--json")
        assert r.returncode == 0, r.stderr
        return json.loads(r.stdout)

    def fault(self, kiosk: str, device: str, cmd: dict) -> dict:
        r = subprocess.run([sys.executable, str(REPO / "scripts" / "demo_fault.py"), "--data-dir", str(self.data),
                            kiosk, device, json.dumps(cmd)], capture_output=True, text=True, timeout=30)
        assert r.returncode == 0, r.stdout + r.stderr
        return json.loads(r.stdout)

    def receipts(self, kiosk: str) -> int:
        return len(list((self.data / "kiosks" / kiosk / "receipts").glob("receipt-*.txt")))

    def alarms(self, kiosk: str, *, history: bool = False) -> list[dict]:
        return self.ctl_json("alarms", "list", "--kiosk", kiosk, *(["--history"] if history else []))["items"]

    def stop(self) -> None:
        self.proc.signal(signal.SIGINT)
        assert self.proc.wait_exit(60) == 0
        self.proc.wait_for(lambda s: "demo fleet stopped" in s, timeout=5)


@pytest.fixture
def display():
    if os.environ.get("DISPLAY"):  # scripts/test runs pytest under xvfb-run
        yield os.environ["DISPLAY"]
        return
    x = Xvfb()
    yield x.start()
    x.stop()


@pytest.mark.skipif(not os.path.exists(CHROMIUM), reason="needs /usr/bin/chromium")
def test_operators_day_on_the_demo_fleet(tmp_path, procs, display, artifacts):
    demo = Demo(tmp_path, procs, display)
    pw = tmp_path / "admin.pw"
    pw.write_text(PASSWORD + "\n")
    r = demo.ctl("user", "add", "admin", "--role", "admin", "--password-file", str(pw))
    assert r.returncode == 0, r.stderr
    wait_until(lambda: {k["kiosk_id"]: k["state"] for k in demo.ctl_json("status")} == dict.fromkeys(KIOSKS, "online"),
               60, "every demo kiosk online", interval=0.2)

    with sync_api.sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        try:
            page = browser.new_page(locale="zh-CN", viewport={"width": 1280, "height": 860})
            page.set_default_timeout(20000)
            page.on("dialog", lambda d: d.accept())  # the command buttons confirm first

            # Sign in; the fleet shows every kiosk online.
            page.goto(demo.url)
            page.fill("input[name=name]", "admin")
            page.fill("input[name=password]", PASSWORD)
            page.click("button[type=submit]")
            page.wait_for_url("**/fleet")
            for kiosk in KIOSKS:
                sync_api.expect(page.locator(f"#k-{kiosk}")).to_have_class("st-online")
            page.screenshot(path=str(artifacts / "demo-day-fleet.png"), full_page=True)

            # A test print on every kiosk, headless and Kivy, from its page: it succeeds, a receipt appears.
            for kiosk in KIOSKS:
                before = demo.receipts(kiosk)
                page.goto(demo.url + f"kiosks/{kiosk}")
                # needs: the Kivy kiosk's device states without a null required action (contract).
                sync_api.expect(page.locator("#kstatus")).to_have_class("badge st-online")
                page.click("button[data-cmd=test_print]")
                sync_api.expect(page.locator("#cmd-result")).to_have_attribute("data-status", "succeeded",
                                                                              timeout=30000)
                wait_until(lambda k=kiosk, n=before: demo.receipts(k) > n, 15, f"a receipt from {kiosk}", interval=0.2)

            # Paper out on each kind of kiosk: exactly one paper_out alarm each, nothing else.
            faulty = [HEADLESS[0], WINDOW]
            for kiosk in faulty:
                assert demo.fault(kiosk, "printer", {"cmd": "paper", "state": "out"})["ok"]
            for kiosk in faulty:
                # needs: paper_out from the Kivy kiosk's device status (contract), one fault one alarm (rules).
                wait_until(lambda k=kiosk: [a["rule"] for a in demo.alarms(k)] == ["paper_out"], 40,
                           f"one paper_out alarm on {kiosk}", interval=0.2)
            page.goto(demo.url + "alarms")
            for kiosk in faulty:
                row = page.locator("tr[data-alarm]", has_text=kiosk)
                sync_api.expect(row).to_have_count(1)
                row.locator("input[name=note]").fill("paper roll replaced")
                row.locator("button").click()
                sync_api.expect(page.locator("tr[data-alarm]", has_text=kiosk).locator(".acked")) \
                    .to_contain_text("admin")
            page.screenshot(path=str(artifacts / "demo-day-alarms.png"), full_page=True)
            for kiosk in faulty:
                assert demo.fault(kiosk, "printer", {"cmd": "paper", "state": "ok"})["ok"]
            for kiosk in faulty:
                wait_until(lambda k=kiosk: demo.alarms(k) == [], 40, f"the alarm on {kiosk} cleared", interval=0.2)
                assert [a["rule"] for a in demo.alarms(kiosk, history=True)] == ["paper_out"]

            # A config change: previewed, applied, and reported back by every kiosk.
            page.goto(demo.url + "config?layer=fleet")
            page.fill("textarea[name=text]", json.dumps({"volume": 55}))
            page.click("button[value=preview]")
            page.click("button[value=apply]")
            version = wait_until(lambda: demo.ctl_json("config", "get", "fleet")["version"], 10, "fleet layer", interval=0.2)

            def all_reported():
                diff = demo.ctl_json("config", "diff")
                return len(diff) == len(KIOSKS) and all(d["in_sync"] and d["reported_version"] == version
                                                        for d in diff)
            wait_until(all_reported, 30, f"every kiosk reporting config v{version}", interval=0.2)
            page.goto(demo.url + f"kiosks/{WINDOW}")
            sync_api.expect(page.locator("body")).to_contain_text(f"v{version}")

            # The report counts the two printer faults once each.
            page.goto(demo.url + "reports")
            page.screenshot(path=str(artifacts / "demo-day-report.png"), full_page=True)
            csv = page.request.get(demo.url + "reports/report.csv")
            assert csv.ok
            failures = [line.split(",") for line in csv.text().splitlines() if line.startswith("device_failures,")]
            # needs: one fault one alarm (alarm rules), so the report counts faults, not alarms.
            assert [(f[1], f[2]) for f in failures] == [("printer", "2")], failures

            # The audit log holds every step of the day.
            page.goto(demo.url + "audit")
            body = page.locator("main").inner_text()
            said = Translator("zh-CN").term  # the page names each action in the operator's language
            for action in ("login", "alarm.ack", "config.set"):
                assert said("auditaction", action) in body, action
            assert body.count(said("auditaction", "command.send")) >= len(KIOSKS), body
            # needs: one audit log (console and fleet), with kioskctl's user and enrolment steps in it.
            audit = demo.ctl_json("audit", "--limit", "500")["items"]
            actions = [a["action"] for a in audit]
            assert "login" in actions and "user.add" in actions
        finally:
            browser.close()
    demo.stop()
