"""A real kiosk-controller with an operator account, and a signed-in Chromium page on its console:
the start of the browser tests that watch the console change live."""

from __future__ import annotations

import sys
from pathlib import Path

from tests.support.processes import Proc

OPERATOR = ("otto", "otto-operator-pw")


def start_controller(broker, procs: list, data: Path) -> str:
    """Start ``python -m controller.cli`` on ``data`` with the operator account; returns the console URL."""
    from controller.web.accounts import Accounts

    acc = Accounts(data)
    acc.add_user(OPERATOR[0], "operator", OPERATOR[1])
    acc.close()
    ctl = Proc([sys.executable, "-m", "controller.cli", "--broker", broker.url, "--data-dir", str(data),
                "--http", "127.0.0.1:0"])
    procs.append(ctl)
    return ctl.wait_for("console http://", timeout=20).split(" ", 1)[1].strip()


def signed_in(browser, url: str):
    """A browser context (English, 1280x800, 15 s timeouts) and a page signed in as the operator."""
    ctx = browser.new_context(locale="en-US", viewport={"width": 1280, "height": 800})
    ctx.set_default_timeout(15000)
    page = ctx.new_page()
    page.goto(url + "login")
    page.fill("input[name=name]", OPERATOR[0])
    page.fill("input[name=password]", OPERATOR[1])
    page.click("button[type=submit]")
    page.wait_for_url("**/fleet")
    return ctx, page
