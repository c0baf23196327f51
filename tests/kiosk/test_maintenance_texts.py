"""The maintenance screen's device lines, from the real device manager on the hardware simulators,
in every kiosk language: translated words, never a dict's text, no English word on a Chinese screen.

The device statuses come from :class:`DeviceManager` driving the printer, ID reader and scanner
simulators (paper out, cover open, a card on the reader, a device unplugged); the lines are what
``MaintenanceScreen`` shows (``kiosk_ui.viewmodels.maintenance``). The check is built from the
catalogues: a Chinese line fails on any word of the English catalogue or any snake_case id.
"""

from __future__ import annotations

import re

import pytest

from contract import vocab
from device_drivers.manager import DeviceConfig, DeviceManager
from kiosk_ui.i18n import LANGUAGES, catalogue
from kiosk_ui.viewmodels import maintenance
from tests.support.hong_kong import slips
from tests.support.waiting import wait_until

ENGLISH = {w.lower() for text in catalogue("en").values()
           for w in re.findall(r"[A-Za-z]{3,}", re.sub(r"{\w+}", " ", text))}


def foreign(text: str, lang: str) -> list[str]:
    """Dict text in any language; English words or ids in a Chinese one."""
    bad = [m for m in ("{", "}", "'", "None", "True", "False") if m in text]
    if lang != "en":
        bad += [w for w in re.findall(r"[A-Za-z][A-Za-z_]+", text)
                if not w.isupper() and (w.lower() in ENGLISH or "_" in w)]
    return bad


def wait_for(pred):
    return wait_until(pred, 10, "device status")


@pytest.fixture
def devices(sim, tmp_path):
    sims, configs = {}, []
    for name, dev, baud in (("printer", "printer", 115200), ("id_reader", "id-reader", 115200),
                            ("scanner", "scanner", 9600)):
        proc, link = sim(dev, out=tmp_path / "receipts" if dev == "printer" else None, baud=baud)
        sims[name] = proc
        configs.append(DeviceConfig(name, name, str(link), baud))
    mgr = DeviceManager(configs, data_dir=tmp_path / "data")
    mgr.start()
    yield mgr, sims
    mgr.stop()


def test_every_device_line_in_every_language(devices):
    mgr, sims = devices
    seen = [mgr.status()]
    sims["printer"].send({"cmd": "paper", "state": "out"})
    seen.append(wait_for(lambda: (s := mgr.status())["printer"]["detail"].get("paper") == "out" and s))
    sims["printer"].send({"cmd": "cover", "state": "open"})
    seen.append(wait_for(lambda: (s := mgr.status())["printer"]["detail"].get("cover") == "open" and s))
    sims["id_reader"].send({"cmd": "place_card"})
    seen.append(wait_for(lambda: (s := mgr.status()) and s))
    sims["scanner"].send({"cmd": "unplug"})
    seen.append(wait_for(lambda: (s := mgr.status())["scanner"]["detail"].get("connection") == "disconnected" and s))
    assert seen[1]["printer"]["required_action"], "the simulator's paper out asks for an action"
    for lang in LANGUAGES:
        for status in seen:
            lines = maintenance.device_lines(status, lang)
            assert len(lines) == 3
            for line in lines:
                assert foreign(line, lang) == [], (lang, line)
            assert foreign(maintenance.health_note(status, lang), lang) == []
        assert foreign(maintenance.test_print_note(False, "paper_out", lang), lang) == []
    zh = next(line for line in maintenance.device_lines(seen[1], "zh-CN") if line.startswith("打印机"))
    assert zh.startswith("打印机：故障") and "纸张：缺纸" in zh, zh


def test_device_line_parts():
    st = {"printer": {"state": "error", "detail": {"paper": "out", "cover": "closed", "connection": "connected"},
                      "required_action": "load_paper"}}
    assert maintenance.device_lines(st, "en") == [
        "Printer: fault — connection: connected · cover: closed · paper: out — to do: load a new paper roll"]
    assert maintenance.device_lines(st, "zh-HK") == ["印表機：故障 — 連接：已連接 · 機蓋：關閉 · 紙張：缺紙 — 請裝入新紙卷"]
    # A hint still worded in English by an older driver is not shown in English on a Chinese screen.
    st["printer"]["required_action"] = "load a new paper roll"
    assert maintenance.device_lines(st, "zh-CN")[0].endswith("请检查设备")
    st["printer"]["required_action"] = None
    assert "None" not in maintenance.device_lines(st, "zh-CN")[0]
    assert foreign("paper: {'paper': 'out'}", "en") and foreign("打印机 paper_out", "zh-CN")


def test_the_three_catalogues_have_the_same_keys():
    zh, hk, en = (set(catalogue(lang)) for lang in LANGUAGES)
    assert zh == hk == en


def test_the_kiosk_speaks_hong_kong_chinese_in_zh_hk_as_the_console_does():
    hk = catalogue("zh-HK")
    assert slips(hk) == {}
    assert (hk["device.printer"], hk["result.print_ticket"], hk["maint.test_print"]) == ("印表機", "列印籌號", "測試列印")


def test_every_contract_word_the_screen_shows_is_in_every_kiosk_language():
    words = [*(f"devstate.{s}" for s in vocab.DEVICE_STATES), *(f"action.{a}" for a in vocab.REQUIRED_ACTIONS),
             *(f"fault.{f}" for f in vocab.FAULTS if f), *(f"paper.{p}" for p in vocab.PAPER),
             *(f"cover.{c}" for c in vocab.COVER), *(f"connection.{c}" for c in vocab.CONNECTION),
             *(f"media.{m}" for m in vocab.MEDIA)]
    for lang in LANGUAGES:
        assert [w for w in words if w not in catalogue(lang)] == [], lang
