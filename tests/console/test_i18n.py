"""The console's catalogues: same keys in zh-CN and en, and every key the templates use exists."""

from __future__ import annotations

import re
from pathlib import Path

from controller.web import i18n

WEB = Path(i18n.__file__).parent


def test_catalogues_have_the_same_keys_and_no_empty_text():
    zh, en = i18n.catalogue("zh-CN"), i18n.catalogue("en")
    assert set(zh) == set(en)
    assert all(v.strip() for v in [*zh.values(), *en.values()])
    for key in zh:  # the same placeholders in both languages
        assert set(re.findall(r"{(\w+)}", zh[key])) == set(re.findall(r"{(\w+)}", en[key])), key


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
    assert i18n.choose(None, "zh-TW,zh;q=0.9") == "zh-CN"
    assert i18n.choose("en", "zh-CN") == "en"
    assert i18n.choose("fr", "fr-FR") == "zh-CN"


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
