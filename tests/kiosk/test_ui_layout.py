"""Every screen fits: the real app (Kivy, its own Xvfb screen of each size) walks every screen a
resident can reach, and at each one renders all three languages in normal and elderly mode and
checks the layout (tests/kiosk/layout_check.py): nothing outside the window or cut by a scroll
view, no text larger than its widget, no overlapping siblings, no scrolling, and every
text/background pair at least 4.5:1 (disabled and greyed states included). The maintenance
screen, for technicians, may scroll its log."""

from __future__ import annotations

import pytest

from hardware_sim.identities import PROFILES
from kiosk_ui.i18n import tr
from tests.kiosk.conftest import finish, kiosk_config, release, run_harness, wait_online, wait_token

R1 = PROFILES["resident-1"]["values"]
MASK1 = R1["id_number"][:4] + "*" * 10 + R1["id_number"][-4:]
TAKE_ID = ["sim", "id_reader", {"cmd": "remove_card"}]
TAKE_SS = ["sim", "card_reader", {"cmd": "remove_card"}]


def home() -> list:
    return [["press", "finish"], ["screen", "rating"], ["press", "skip"], ["screen", "done"], ["press", "home"],
            ["screen", "attract"]]


def with_card(service: str, port: str = "id_reader", card: dict | None = None) -> list:
    return [["press", "start"], ["press", f"service:{service}"], ["screen", "identify"],
            ["sim", port, card or {"cmd": "place_card", "profile": "resident-1"}]]


SCRIPT = [
    ["screen", "attract"], ["sync", "online"], ["layout", "attract"],
    ["press", "start"], ["screen", "menu"], ["layout", "menu"],
    ["press", "service:queue_ticket"], ["screen", "step"], ["layout", "step-choices"],
    ["press", "option:general"], ["screen", "result"], ["layout", "result-ticket"],
    ["press", "finish"], ["screen", "rating"], ["layout", "rating"], ["press", "star:5"], ["press", "tag:easy"],
    ["layout", "rating-chosen"], ["press", "submit_rating"], ["screen", "done"], ["layout", "done"],
    ["screen", "attract", 30],
    # Certificate: identify, identified, kind, the printed result; the card is left behind.
    ["press", "start"], ["press", "service:certificate"], ["screen", "identify"], ["layout", "identify"],
    ["sim", "id_reader", {"cmd": "place_card", "profile": "resident-1"}], ["text", MASK1], ["layout", "identified"],
    ["press", "confirm"], ["screen", "step"], ["layout", "step-certificate"], ["press", "option:residence"],
    ["screen", "result", 30], ["text", tr("print.done")], ["layout", "result-certificate"], ["press", "finish"],
    ["screen", "rating"], ["press", "skip"], ["screen", "done"], ["layout", "done-card"],
    ["screen", "attract", 30], ["text", tr("card_left.detail")], ["layout", "attract-card-left"],
    ["press", "start"], ["press", "service:volunteer"], ["screen", "identify"], ["text", tr("identify.card_left_on")],
    ["layout", "identify-card-left"], TAKE_ID, ["cleared", "id_reader"], ["sim", "id_reader", {"cmd": "place_card", "profile": "resident-1"}],
    ["press", "confirm"], ["press", "option:check_out"], ["screen", "failed"], ["layout", "failed"], *home(), TAKE_ID,
    # Appointment slots from the backend.
    *with_card("appointment"), ["press", "confirm"], ["press", "option:centre"], ["screen", "step"],
    ["layout", "step-slots"], ["press_prefix", "option:20"], ["screen", "result"], ["layout", "result-appointment"],
    *home(), TAKE_ID,
    # Social-security card: PIN pad, result.
    *with_card("social_security", "card_reader", {"cmd": "place_card", "kind": "social_security"}),
    ["screen", "card_pin"], ["press", "pin:1"], ["layout", "card_pin"], ["press", "pin:C"],
    *[["press", f"pin:{c}"] for c in "123456✓"], ["press", "confirm"], ["screen", "result"],
    ["layout", "result-social-security"], *home(), TAKE_SS,
    # Notices and feedback (keypad).
    ["press", "start"], ["press", "service:notices"], ["press", "option:elderly"], ["screen", "result"],
    ["layout", "result-notices"], *home(),
    ["press", "start"], ["press", "service:feedback"], ["screen", "step"], ["layout", "step-feedback"],
    ["press", "option:safety"], ["screen", "step"], ["layout", "step-feedback-problem"],
    ["press", "option:parking"], ["press", "option:urgent"], ["screen", "step"],
    *[["press", f"pin:{c}"] for c in "1381234"], ["layout", "phone"], *[["press", f"pin:{c}"] for c in "5678✓"],
    ["screen", "result"], ["layout", "result-feedback"], *home(),
    # Printer out of paper.
    ["sim", "printer", {"cmd": "paper", "state": "out"}],
    ["press", "start"], ["press", "service:queue_ticket"], ["press", "option:social"], ["press", "print"],
    ["screen", "print_failed"], ["layout", "print_failed"], ["press", "show_on_screen"], ["screen", "result"],
    ["layout", "result-shown-instead"], *home(), ["sim", "printer", {"cmd": "paper", "state": "ok"}],
    # Maintenance (technicians: its log may scroll).
    ["corner", 5], ["screen", "pin"], ["layout", "pin"], *[["press", f"pin:{c}"] for c in "2468✓"],
    ["screen", "maintenance"], ["layout", "maintenance", {"scroll": True}], ["press", "exit"], ["screen", "attract"],
    # Out of service, then the service centre offline: the menu's two-line title, a local ticket.
    ["sync", "oos"], ["screen", "out_of_service"], ["layout", "out_of_service"], ["sync", "normal"],
    ["screen", "attract"], ["sync", "offline"], ["press", "start"], ["text", tr("menu.offline_title")],
    ["layout", "menu-offline"], ["press", "service:queue_ticket"], ["press", "option:general"], ["screen", "result"],
    ["layout", "result-ticket-offline"],
]


@pytest.mark.parametrize("size", ["1280x800", "1024x600", "1920x1080"])
def test_every_screen_fits_in_every_language_and_mode(size, broker, controller, procs, tmp_path, artifacts):
    p = run_harness(procs, tmp_path, SCRIPT, artifacts=artifacts, tag=f"layout-{size}", extra=["--size", size],
                    screen=size, config=kiosk_config(tmp_path, broker.url, public_key=controller.public_key()))
    wait_online(controller)
    wait_token(p, "online")
    release(p, "online")
    wait_token(p, "oos", 300)
    cid = controller.send_command("k-ui", "set_mode", {"mode": "out_of_service"}, "test")
    assert controller.wait_command(cid, 30)["status"] == "succeeded"
    release(p, "oos")
    wait_token(p, "normal")
    cid = controller.send_command("k-ui", "set_mode", {"mode": "normal"}, "test")
    assert controller.wait_command(cid, 30)["status"] == "succeeded"
    release(p, "normal")
    wait_token(p, "offline")
    controller.stop()
    controller.stopped_by_test = True
    release(p, "offline")
    finish(p, timeout=300)
    checked = [line for line in p.stdout_lines if line.startswith("LAYOUT ")]
    assert len(checked) >= 6 * 25, checked[-3:]
    assert all(f"({size.replace('x', ', ')})" in line for line in checked), checked[:1]
    bad = sorted({line.split(" ", 1)[1] for line in p.stdout_lines if line.startswith("BADLAYOUT")})
    assert not bad, f"{len(bad)} layout problems at {size}:\n" + "\n".join(bad)
