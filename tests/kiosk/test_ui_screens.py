"""A screenshot of every screen in zh-CN, zh-HK, English and elderly mode (test-artifacts/), taken
from the real app against the simulators, Mosquitto and the controller. Elderly mode also checks
text and touch-target sizes on every screen."""

from __future__ import annotations

import json
import re

import pytest

from hardware_sim.identities import PROFILES
from kiosk_ui.i18n import LANGUAGES, catalogue, tr
from tests.kiosk.conftest import finish, kiosk_config, release, run_harness, wait_token
from tests.kiosk.test_maintenance_texts import foreign

NAME = PROFILES["resident-1"]["values"]["name"]


def screens(elderly: bool) -> list:
    e = [["elderly"], ["sizes"]] if elderly else []

    def shot(name):
        return [["shot", name], *([["sizes"]] if elderly else [])]

    return [
        ["screen", "attract"], ["sync", "online"], *e, *shot("attract"),
        ["press", "start"], ["screen", "menu"], *shot("menu"),
        ["press", "service:queue_ticket"], ["screen", "step"], *shot("step"),
        ["press", "option:general"], ["screen", "result"], *shot("result"),
        ["press", "finish"], ["screen", "rating"], ["press", "star:5"], ["press", "tag:easy"], *shot("rating"),
        ["press", "submit_rating"], ["screen", "done"], *shot("done"), ["press", "home"], ["screen", "attract"],
        *e, ["press", "start"], ["press", "service:volunteer"], ["screen", "identify"], *shot("identify"),
        ["sim", "id_reader", {"cmd": "place_card", "profile": "resident-1"}],
        ["text", NAME[0] + "*" * (len(NAME) - 1)], *shot("identified"), ["press", "confirm"], ["screen", "step"],
    ]


def rest(elderly: bool) -> list:
    e = [["elderly"]] if elderly else []

    def shot(name):
        return [["shot", name], *([["sizes"]] if elderly else [])]

    return [
        ["press", "back"], ["screen", "menu"], ["press", "service:volunteer"], ["screen", "identify"],
        ["press", "confirm"], ["press", "option:check_out"], ["screen", "failed"], *shot("failed"),
        ["press", "finish"], ["press", "skip"], ["press", "home"], ["screen", "attract"],
        ["sim", "id_reader", {"cmd": "remove_card"}],
        *e, ["press", "start"], ["press", "service:social_security"], ["screen", "identify"],
        ["sim", "card_reader", {"cmd": "place_card", "kind": "social_security"}], ["screen", "card_pin"],
        ["press", "pin:1"], *shot("card_pin"), ["press", "back"], ["screen", "menu"], ["press", "home"],
        ["sim", "card_reader", {"cmd": "remove_card"}],
        ["sim", "printer", {"cmd": "paper", "state": "out"}],
        *e, ["press", "start"], ["press", "service:queue_ticket"], ["press", "option:social"], ["press", "print"],
        ["screen", "print_failed"], *shot("print_failed"), ["press", "show_on_screen"], ["press", "finish"],
        ["press", "skip"], ["press", "home"], ["screen", "attract"],
        *e, ["corner", 5], ["screen", "pin"], *shot("pin"),
        *[["press", f"pin:{c}"] for c in "2468✓"], ["screen", "maintenance"], *shot("maintenance"),
        ["press", "health"], ["text", "%HEALTH%"], ["labels", "maintenance"],
        ["press", "exit"], ["screen", "attract"],
        # Feedback: the call-back number typed on the keypad.
        *e, ["press", "start"], ["press", "service:feedback"], ["press", "option:safety"], ["press", "option:parking"],
        ["press", "option:urgent"],
        *[["press", f"pin:{c}"] for c in "1381234"], ["text", "138 1234"], *shot("phone"),
        *[["press", f"pin:{c}"] for c in "5678✓"], ["screen", "result"], ["text", "138****5678"],
        *shot("feedback"), ["press", "finish"], ["press", "skip"], ["press", "home"], ["screen", "attract"],
        *e, ["sync", "oos"], ["screen", "out_of_service"], *shot("out_of_service"),
    ]


@pytest.mark.parametrize("tag", ["zh-CN", "zh-HK", "en", "elderly"])
def test_screenshots_of_every_screen(tag, broker, controller, procs, tmp_path, artifacts):
    elderly = tag == "elderly"
    lang = "zh-CN" if elderly else tag
    health = tr("maint.health_note", lang, devices="").rstrip()  # the health check's note has appeared
    steps = [["text", health] if s == ["text", "%HEALTH%"] else s for s in screens(elderly) + rest(elderly)]
    extra = ["--language", tag] if tag in ("zh-HK", "en") else []
    p = run_harness(procs, tmp_path, steps, artifacts=artifacts, tag=tag, extra=extra,
                    config=kiosk_config(tmp_path, broker.url, public_key=controller.public_key()))
    wait_token(p, "online", 60)
    release(p, "online")
    wait_token(p, "oos")
    cid = controller.send_command("k-ui", "set_mode", {"mode": "out_of_service"}, "test")
    assert controller.wait_command(cid, 30)["status"] == "succeeded"
    release(p, "oos")
    finish(p)
    names = ["attract", "menu", "step", "result", "rating", "done", "identify", "identified", "failed", "card_pin",
             "print_failed", "pin", "maintenance", "out_of_service"]
    for name in names:
        png = artifacts / f"kiosk-{name}-{tag}.png"
        assert png.is_file() and png.stat().st_size > 5000, png
    # The maintenance screen (devices, health check) in the kiosk's language, never a dict's text.
    shown = [json.loads(line.split(" ", 2)[2]) for line in p.stdout_lines if line.startswith("LABELS maintenance")]
    assert shown and any(tr("maint.devices", lang) in t for t in shown[0])
    # Not checked: the raw log lines ("12:00:01 INFO kiosk_ui.app: ...") and the language buttons,
    # each in its own language.
    names = {v for code in LANGUAGES for k, v in catalogue(code).items() if k.startswith("lang.")}
    texts = [t for t in shown[0] if not re.match(r"\d\d:\d\d:\d\d [A-Z]+ ", t) and t not in names]
    assert any(t.startswith(tr("device.printer", lang)) for t in texts), texts
    assert [t for t in texts if foreign(t, lang)] == [], texts
    if elderly:
        sizes = [int(line.split()[1]) for line in p.stdout_lines if line.startswith("SIZES")]
        assert sizes and min(sizes) >= 30
