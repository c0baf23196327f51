"""The console's catalogues: the same keys and placeholders in zh-CN, zh-HK and en, Traditional
Chinese in Hong Kong's words in zh-HK, every key the templates use exists, and the language choice."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from controller.web import i18n
from tests.support.hong_kong import MAINLAND_WORDS, SIMPLIFIED_ONLY, slips

WEB = Path(i18n.__file__).parent


def _placeholders(text: str) -> set[str]:
    return set(re.findall(r"{(\w+)}", text))


@pytest.mark.parametrize("lang", [lang for lang in i18n.LANGS if lang != i18n.DEFAULT])
def test_catalogues_have_the_same_keys_placeholders_and_no_empty_text(lang):
    base, other = i18n.catalogue(i18n.DEFAULT), i18n.catalogue(lang)
    assert sorted(set(base) ^ set(other)) == []
    assert [k for k, v in other.items() if not v.strip()] == []
    assert [k for k in base if _placeholders(base[k]) != _placeholders(other[k])] == []


def test_the_traditional_catalogue_is_hong_kong_chinese():
    hk = i18n.catalogue("zh-HK")
    assert slips(hk) == {}
    # Not a character conversion of zh-CN: Hong Kong's words where the two differ.
    assert (hk["nav.logout"], hk["login.title"], hk["command.collect_diagnostics"], hk["command.test_print"],
            hk["updatereason.not_on_server"]) == ("登出", "登入", "收集診斷資訊", "測試列印", "伺服器上沒有此檔案")


def test_the_check_lists_catch_what_they_are_for():
    assert set("设备信息") & SIMPLIFIED_ONLY and not set("設備資訊") & SIMPLIFIED_ONLY
    assert [w for w in MAINLAND_WORDS if w in "收集診斷信息，登錄伺服器"] == ["信息", "登錄"]
    assert slips({"a": "设备資訊", "b": "打印機", "c": "列印"}) == {"a": ["备", "设"], "b": ["打印"]}


def test_every_key_used_by_templates_and_code_exists():
    used = set()
    for path in [*WEB.glob("templates/*.html"), *WEB.glob("*.py")]:
        used |= set(re.findall(r"""\bt\(\s*["']([a-z_]+\.[a-z_]+)["']""", path.read_text(encoding="utf-8")))
    assert len(used) > 60
    missing = sorted(k for k in used if k not in i18n.catalogue("en"))
    assert not missing, missing


def test_language_choice():
    assert i18n.choose(None, None) == "zh-CN"
    assert i18n.choose(None, "en-GB,en;q=0.9") == "en"
    assert i18n.choose("en", "zh-CN") == "en"
    assert i18n.choose("zh-HK", "en") == "zh-HK"
    assert i18n.choose("fr", "fr-FR") == "zh-CN"
    # Traditional readers (Hong Kong, Macao, Taiwan, or the script named) get zh-HK; other Chinese zh-CN.
    for header in ("zh-HK", "zh-hk,zh;q=0.8", "zh-MO", "zh-TW,zh;q=0.9", "zh-Hant", "zh-Hant-HK,en;q=0.5"):
        assert i18n.choose(None, header) == "zh-HK", header
    for header in ("zh", "zh-CN,zh;q=0.9,en;q=0.8", "zh-Hans-CN", "zh-SG"):
        assert i18n.choose(None, header) == "zh-CN", header
    # The browser's weights decide, not only the order; q=0 and a bad weight mean "not this one".
    assert i18n.choose(None, "en;q=0.4,zh-HK;q=0.9") == "zh-HK"
    assert i18n.choose(None, "zh-HK;q=0,en;q=0.1") == "en"
    assert i18n.choose(None, "zh-HK;q=high,fr") == "zh-CN"
    assert i18n.choose(None, "fr-FR,de;q=0.8,zh-TW;q=0.3") == "zh-HK"


def test_the_header_offers_the_other_languages_each_in_its_own_words():
    assert i18n.switch_to("zh-CN") == [("zh-HK", "繁體中文"), ("en", "English")]
    assert i18n.switch_to("zh-HK") == [("zh-CN", "简体中文"), ("en", "English")]
    assert i18n.switch_to("en") == [("zh-CN", "简体中文"), ("zh-HK", "繁體中文")]


def test_dynamic_keys_exist():
    from controller.web.core_gateway import BUTTONS, LAYERS
    from controller.web.fleetview import STATUSES

    cat = i18n.catalogue("zh-CN")
    keys = [label for label, _, _ in BUTTONS] + [f"status.{s}" for s in STATUSES] + [f"config.{x}" for x in LAYERS]
    assert [k for k in keys if k not in cat] == []


def test_every_command_status_is_translated():
    from controller.commands import FINAL, OPEN

    assert [s for s in (*OPEN, *FINAL) if f"cmdstatus.{s}" not in i18n.catalogue("en")] == []


def test_every_alarm_rule_of_the_default_rules_is_translated():
    from controller.alarms import load_rules

    rules = load_rules()
    for lang in i18n.LANGS:
        cat = i18n.catalogue(lang)
        assert [r.id for r in rules if f"rule.{r.id}" not in cat] == []
        assert [r.severity for r in rules if f"severity.{r.severity}" not in cat] == []
