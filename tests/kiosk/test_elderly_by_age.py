"""Elderly mode by age: the real kiosk app (Kivy under Xvfb, touches) with ``elderly_auto_age = 65``
and the ID-reader simulator. A fictitious resident born in 1950 places their card: elderly mode is
on for their session and shown in the top bar; it is off again for the next resident, a 36-year-old
whose card leaves it off."""

from __future__ import annotations

from hardware_sim.identities import PROFILES
from kiosk_ui.i18n import tr
from tests.kiosk.conftest import finish, kiosk_config, release, run_harness, wait_online, wait_token

ELDER, YOUNGER = PROFILES["elder-1"]["values"], PROFILES["resident-1"]["values"]
ON, OFF = tr("elderly.on_state"), tr("elderly.off_state")


def masked(values: dict) -> str:
    return values["id_number"][:4] + "*" * 10 + values["id_number"][-4:]


def session(profile: str, values: dict) -> list:
    return [["press", "start"], ["press", "service:certificate"], ["screen", "identify"], ["text", OFF],
            ["sim", "id_reader", {"cmd": "place_card", "profile": profile}], ["text", masked(values)]]


SCRIPT = [
    ["screen", "attract"], ["sync", "online"],
    *session("elder-1", ELDER), ["text", ON], ["no_text", OFF], ["press", "confirm"], ["screen", "step"],
    ["text", ON],  # it stays on for the session
    ["press", "home"], ["screen", "attract"], ["wiped"], ["text", OFF],  # and ends with it
    ["sim", "id_reader", {"cmd": "remove_card"}],
    *session("resident-1", YOUNGER), ["press", "confirm"], ["screen", "step"], ["text", OFF], ["no_text", ON],
    ["press", "home"], ["screen", "attract"], ["sim", "id_reader", {"cmd": "remove_card"}],
]


def test_elderly_mode_follows_the_card_holders_age(broker, controller, procs, tmp_path, artifacts):
    # The certificate service needs the backend, so the kiosk joins a real broker and controller.
    p = run_harness(procs, tmp_path, SCRIPT, artifacts=artifacts, tag="elderly-by-age",
                    config=kiosk_config(tmp_path, broker.url, kiosk_id="k-elderly-age",
                                        extra="elderly_auto_age = 65\n"))
    wait_online(controller, "k-elderly-age")
    wait_token(p, "online")
    release(p, "online")
    finish(p)
