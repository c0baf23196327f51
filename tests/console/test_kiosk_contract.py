"""Each kiosk's contract version on the console, as its own birth announced it.

A real Controller on a real Mosquitto; a kiosk runtime on today's contract, and a kiosk of the
previous contract replayed byte for byte from ``tests/contract/previous_v1.json`` (generated from
the 1.0 code, as in ``tests/fleet/test_mixed_fleet.py``). The kiosk page says, in each console
language, the version each birth announced and that the old kiosk is behind the controller; the
REST API gives the same value.
"""

from __future__ import annotations

import html
import json
import re
from pathlib import Path

import pytest

from contract import signing, topics, versions
from controller.server import Controller
from controller.store import Store
from controller.web import console_reads, i18n
from controller.web.app import build_console, create_app
from controller.web.fleetview import contract_reading
from foundation.settings import ControllerConfig, KioskConfig, from_mapping
from kiosk_ui.agent.runtime import KioskRuntime
from tests.console.conftest import PASSWORDS, ROLES, login
from tests.fleet.conftest import Raw
from tests.support.waiting import wait_until

PREVIOUS = json.loads((Path(__file__).parents[1] / "contract" / "previous_v1.json").read_text(encoding="utf-8"))
OLD, NEW = "GD-OLD-1", "GD-NEW-1"  # OLD: the id the previous-contract fixture was generated with
CONTROLLER = f"{versions.MAJOR}.{versions.MINOR}"


@pytest.fixture
def fleet(broker, tmp_path):
    data = tmp_path / "controller-data"
    ctl = Controller(from_mapping(ControllerConfig, {"broker": broker.url, "data_dir": str(data), "keepalive": 5}))
    ctl.start()
    assert ctl.wait_listening(10), "controller not subscribed within 10 s"
    watcher = Raw(broker, "contract-watcher")
    watcher.subscribe(f"kiosk/v1/{NEW}/status")
    cfg = from_mapping(KioskConfig, {"kiosk_id": NEW, "broker": broker.url, "site": "site-a",
                                     "data_dir": str(tmp_path / NEW), "keepalive": 2,
                                     "controller_public_key": signing.public_key_text(ctl.key)})
    kiosk = KioskRuntime(cfg, reboot_command=("true",))
    kiosk.start()
    old = Raw(broker, "previous-contract-kiosk")
    old.publish(topics.topic(OLD, "status"), PREVIOUS["birth"], 1, retain=True)
    console = build_console(data, ctl)
    for name, pw in PASSWORDS.items():
        console.accounts.add_user(name, ROLES[name], pw)
    app = create_app(console, start_poller=True)
    client = login(app, "vera")
    yield client, watcher
    client.__exit__(None, None, None)
    old.close()
    watcher.close()
    kiosk.stop()
    ctl.stop()
    console.accounts.close()
    console_reads.close_all()


def _shown(page: str) -> str:
    """The text of the kiosk page's contract line."""
    line = re.search(r'<dd id="contract">(.*?)</dd>', page, re.S)
    assert line, "no contract line on the kiosk page"
    return " ".join(html.unescape(re.sub(r"<[^>]+>", " ", line.group(1))).split())


def test_the_kiosk_page_shows_the_contract_each_birth_announced(fleet):
    client, watcher = fleet
    birth = watcher.wait_json(lambda t, b: b.get("state") == "online")  # the real kiosk's own birth
    announced = "{}.{}".format(*versions.parse_version(birth["v"]))
    assert announced == CONTROLLER  # a kiosk of this build speaks this build's contract
    wait_until(lambda: {k["kiosk_id"]: k["contract"] for k in client.get("/api/v1/kiosks").json()["items"]}
               == {NEW: announced, OLD: "1.0"}, 15, "both births applied and read by the console")
    assert client.get(f"/api/v1/kiosks/{NEW}").json()["contract"] == announced

    for lang in i18n.LANGS:
        t = i18n.Translator(lang)
        client.cookies.set("lang", lang)
        new_page, old_page = client.get(f"/kiosks/{NEW}").text, client.get(f"/kiosks/{OLD}").text
        assert f"<dt>{t('kiosk.contract')}</dt>" in new_page and f"<dt>{t('kiosk.contract')}</dt>" in old_page
        assert _shown(new_page) == announced  # the same as the controller: nothing more to say
        assert _shown(old_page) == f"1.0 {t('kiosk.contract_older', controller=CONTROLLER)}"
    assert i18n.Translator("zh-HK")("kiosk.contract") == "通訊協定版本"


def test_what_the_page_says_of_a_contract_version():
    assert contract_reading(CONTROLLER) == {"announced": CONTROLLER, "read_as": CONTROLLER, "relation": "",
                                            "controller": CONTROLLER}
    assert contract_reading("1.0")["relation"] == "older"
    assert contract_reading(f"{versions.MAJOR}.{versions.MINOR + 1}")["relation"] == "newer"
    # No birth applied yet: nothing announced, read as 1.0 (handlers.announced_contract), no comparison.
    assert contract_reading("") == {"announced": "", "read_as": "1.0", "relation": "", "controller": CONTROLLER}
    # A stored value the controller cannot parse is shown as it is and read the safe way.
    assert contract_reading("x.y") == {"announced": "x.y", "read_as": "1.0", "relation": "older",
                                       "controller": CONTROLLER}


def test_the_page_words_a_newer_contract_and_one_not_announced(console_env, app):
    """The page's other two readings, from stored records (no kiosk of a newer contract exists to
    announce one, and every real birth announces a version)."""
    newer = f"{versions.MAJOR}.{versions.MINOR + 1}"
    store = Store(console_env.data_dir)
    store.upsert_kiosks([{"kiosk_id": kiosk_id, "site": "site-0", "state": "online", "mode": "normal", "devices": {},
                          "last_seen": 1.0, "state_since": 1.0, "contract": contract}
                         for kiosk_id, contract in (("gd-newer", newer), ("gd-silent", ""))])
    store.conn.commit()
    store.close()
    console_env.fleet.refresh_all()
    client = login(app, "vera")
    try:
        for lang in i18n.LANGS:
            t = i18n.Translator(lang)
            client.cookies.set("lang", lang)
            assert _shown(client.get("/kiosks/gd-newer").text) == \
                f"{newer} {t('kiosk.contract_newer', controller=CONTROLLER)}"
            assert _shown(client.get("/kiosks/gd-silent").text) == t("kiosk.contract_none", read_as="1.0")
    finally:
        client.__exit__(None, None, None)
