"""Soak (issue 17): the real Kivy kiosk's resident journeys failed when a controller outage greyed
the services out mid-round. The kiosk doing so is the promised behaviour; a resident sees it, goes
away and finishes later. Here (real app under Xvfb, real Mosquitto, the real controller) the
controller stops before the resident picks a service that needs it: the harness's resident must
find it greyed out under the offline title in the catalogue's words, walk away (session wiped),
and once a controller is back do the whole round again, which the backend then stores."""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path

from benchmarks.soak_resident import PHONE, _home
from controller.server import Controller
from tests.kiosk.conftest import finish, kiosk_config, release, run_harness, wait_online, wait_token

I18N = Path(__file__).resolve().parents[2] / "kiosk_ui" / "i18n" / "zh-CN.json"


def test_a_resident_who_finds_the_centre_down_comes_back_and_finishes(broker, controller, procs, tmp_path,
                                                                        artifacts):
    offline_title = json.loads(I18N.read_text(encoding="utf-8"))["menu.offline_title"]
    steps = [
        ["screen", "attract", 60], ["sync", "down"],
        # The kiosk has seen its centre go: the menu says so. The resident leaves; then comes the round.
        ["press", "start"], ["text", offline_title], ["idle", 75], ["screen", "attract", 30],
        ["round", "r0"],
        ["press", "start"], ["press", "service:feedback"], ["press", "option:safety"], ["press", "option:parking"],
        ["press", "option:normal"], *[["press", f"pin:{c}"] for c in PHONE + "✓"], ["screen", "result"],
        *_home(), ["sync", "end"],
    ]
    p = run_harness(procs, tmp_path, steps, artifacts=artifacts, tag="comesback",
                    config=kiosk_config(tmp_path, broker.url, public_key=controller.public_key()))
    wait_online(controller)
    wait_token(p, "down")
    controller.stop()
    controller.stopped_by_test = True
    release(p, "down")
    away = p.wait_for(lambda s: s.startswith(("UNAVAILABLE", "FAIL")), timeout=120)
    assert away.split()[:3] == ["UNAVAILABLE", "r0", "menu.unavailable"], away
    again = Controller(controller.config)
    again.start()
    try:
        back = p.wait_for(lambda s: s.startswith(("BACK", "FAIL")), timeout=120)
        assert back.startswith("BACK r0"), back
        wait_token(p, "end", timeout=120)
        release(p, "end")
        finish(p)
    finally:
        again.stop()
    db = sqlite3.connect(tmp_path / "controller" / "controller.sqlite3")
    assert db.execute("SELECT category, problem, phone FROM svc_feedback").fetchall() == [
        ("safety", "parking", PHONE)]  # done once, after the comeback
    assert sum(line.startswith("UNAVAILABLE") for line in p.stdout_lines) == 1
