"""End to end with the fleet database on PostgreSQL: a real ``kiosk-controller`` started from its
TOML config (``database = "postgresql://..."``), a real simulated kiosk agent, the console in real
headless Chromium and ``kioskctl`` given the same config file.

The operator account is made with ``kioskctl user add`` (so it lands in PostgreSQL), the console
shows the kiosk online, a test print sent from the kiosk page reaches the kiosk and its result
comes back, and ``kioskctl --json`` reads the same kiosk and command from PostgreSQL. Nothing of
the fleet is in the data folder's SQLite file.
"""

from __future__ import annotations

import json
import os
import sqlite3
import subprocess
import sys

import pytest

from contract import signing
from controller.store import DB_NAME
from tests.console.test_browser_e2e import ARGS, CHROMIUM, signed_in_page, start_agent
from tests.support.processes import REPO, Proc

sync_api = pytest.importorskip("playwright.sync_api")
KIOSKCTL = str(REPO / ".venv" / "bin" / "kioskctl")
KIOSK = "gd-pg-print"


def kioskctl(config, *argv: str) -> subprocess.CompletedProcess:
    return subprocess.run([KIOSKCTL, "--config", str(config), *argv], capture_output=True, text=True, timeout=30,
                          env={**os.environ, "KIOSKCTL_USER": "otto"})


@pytest.mark.skipif(not os.path.exists(CHROMIUM), reason="needs /usr/bin/chromium")
def test_console_and_kioskctl_on_postgresql(broker, procs, tmp_path, postgres_url, artifacts):
    data = tmp_path / "controller-data"
    config = tmp_path / "controller.toml"
    config.write_text(f'broker = "{broker.url}"\ndata_dir = "{data}"\nhttp = "127.0.0.1:0"\n'
                      f'telemetry_period = 5.0\ndatabase = "{postgres_url}"\n', encoding="utf-8")
    key = signing.public_key_text(signing.load_or_create_key(data, None))
    ctl = Proc([sys.executable, "-m", "controller.cli", "--config", str(config)])
    procs.append(ctl)
    url = ctl.wait_for("console http://", timeout=30).split(" ", 1)[1].strip()
    (tmp_path / "pw").write_text("otto-operator-pw\n", encoding="utf-8")
    made = kioskctl(config, "user", "add", "otto", "--role", "operator", "--password-file", str(tmp_path / "pw"))
    assert made.returncode == 0, made.stderr
    agent = start_agent(broker, tmp_path, KIOSK, key, "site-pg")
    procs.append(agent)
    agent.wait_for(f"kiosk {KIOSK} online", timeout=60)  # a loaded machine starts Python slowly

    with sync_api.sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        try:
            page = signed_in_page(browser, url, "otto", "otto-operator-pw")
            sync_api.expect(page.locator(f"#k-{KIOSK} .badge")).to_have_text("在线", timeout=20000)
            page.screenshot(path=str(artifacts / "console-postgres-fleet.png"), full_page=True)

            page.goto(url + f"kiosks/{KIOSK}")
            page.once("dialog", lambda d: d.accept())
            page.click("button[data-cmd=test_print]")
            result = page.locator("#cmd-result")
            sync_api.expect(result).to_have_attribute("data-status", "succeeded", timeout=30000)
            page.screenshot(path=str(artifacts / "console-postgres-kiosk.png"), full_page=True)
        finally:
            browser.close()

    shown = kioskctl(config, "--json", "kiosks", "show", KIOSK)
    assert shown.returncode == 0, shown.stderr
    detail = json.loads(shown.stdout)
    assert detail["state"] == "online" and detail["site"] == "site-pg"
    assert [(c["name"], c["issuer"], c["status"]) for c in detail["commands"]] == [("test_print", "otto", "succeeded")]
    audit = json.loads(kioskctl(config, "--json", "audit").stdout)["items"]
    assert {("otto", "login"), ("otto", "command.result")} <= {(a["user"], a["action"]) for a in audit}
    # The fleet lives in PostgreSQL only: a SQLite file in the data folder, if any, holds no kiosk.
    if (data / DB_NAME).exists():
        conn = sqlite3.connect(data / DB_NAME)
        try:
            has_kiosks = conn.execute("SELECT 1 FROM sqlite_master WHERE name = 'kiosks'").fetchone()
            assert not has_kiosks or conn.execute("SELECT COUNT(*) FROM kiosks").fetchone()[0] == 0
        finally:
            conn.close()
