"""Roll-out reasons are a code and params (controller/rollout_reasons.py), worded from the console's
catalogues (controller/web/rollout_words.py); kiosks' update reasons are read by the contract's
vocabulary (contract/updates.py); sentences an older controller stored still show."""

from __future__ import annotations

import pytest

from contract import updates
from controller import rollout_reasons as RR
from controller.web import i18n, rollout_words
from controller.web.i18n import Translator

EN, ZH = Translator("en"), Translator("zh-CN")


@pytest.mark.parametrize(("text", "expected"), [
    ("crashed: exit status 1", ("crashed", "exit status 1")),
    ("disk_full: release 1.4.0 needs about 9 bytes, 1 are free", ("disk_full", "release 1.4.0 needs about 9 bytes, 1 are free")),
    ("deferred (busy): session held 40 s (limit 600 s)", ("busy", "session held 40 s (limit 600 s)")),
    ("deferred (locked): print held 900 s (limit 120 s)", ("locked", "print held 900 s (limit 120 s)")),
    ("switch failed: exit status 3", ("switch_failed", "exit status 3")),
    ("no_broker", ("no_broker", "")),
    ("flux_capacitor: overloaded", ("flux_capacitor", "overloaded")),  # a newer kiosk's id: kept as a code
    ("Something Odd happened", ("", "Something Odd happened")),
    ("<b>x</b>: y", ("", "<b>x</b>: y")),
])
def test_the_contract_splits_a_kiosks_reason_into_its_id_and_detail(text, expected):
    assert updates.reason_id(text) == expected


def test_the_kiosks_real_reasons_are_in_the_vocabulary():
    from kiosk_ui.updater.health import _MISSING_REASON  # noqa: PLC2701 - the updater's own table

    assert set(_MISSING_REASON.values()) <= set(updates.REASONS)
    assert len(set(updates.REASONS)) == len(updates.REASONS)


def test_a_reason_is_a_known_code_with_the_params_its_text_names():
    assert RR.make("timed_out", timeout=60) == {"code": "timed_out", "params": {"timeout": 60}}
    with pytest.raises(ValueError, match="nonsense"):
        RR.make("nonsense")
    with pytest.raises(ValueError, match="timed_out"):
        RR.make("timed_out", seconds=60)
    assert RR.operator("paused_by_operator", "") == {"code": "paused_by_operator", "params": {}}
    assert RR.operator("paused_by_operator", "x" * 400)["params"]["note"] == "x" * RR.MAX_TEXT
    assert RR.from_kiosk("") == {}


def test_every_code_has_a_text_in_every_console_language():
    for lang in i18n.LANGS:
        cat = i18n.catalogue(lang)
        missing = [c for c in RR.CODES if c not in ("kiosk", "text") and f"roreason.{c}" not in cat]
        missing += [r for r in updates.REASONS if f"updatereason.{r}" not in cat]
        assert not missing, (lang, missing)
        for code, names in RR.CODES.items():  # each text names exactly the params the code carries
            text = cat.get(f"roreason.{code}", "")
            assert {n for n in names if n != "note" and "{" + n + "}" in text} == \
                {n for n in names if n != "note" and text}, (lang, code)


def test_a_pause_on_errors_reads_in_each_language():
    reason = RR.make("error_threshold", wave=2, failed=4, counted=346, threshold=0.01, min=1, limit=4)
    assert rollout_words.plain(EN, reason) == \
        "wave 2: 4 of 346 kiosks failed (error threshold 1.0% of the wave, at least 1: 4 kiosks)"
    assert rollout_words.plain(ZH, reason) == "第 2 批：346 台中 4 台失败（错误阈值为该批的 1.0%，至少 1 台：4 台）"


def test_a_kiosks_reason_known_id_translated_unknown_id_a_code_everything_escaped():
    known = RR.from_kiosk("crashed: <exit> 1")
    assert rollout_words.html(ZH, known) == '新版本崩溃 <code class="id">&lt;exit&gt; 1</code>'
    assert rollout_words.plain(EN, known) == "the new release crashed (<exit> 1)"
    unknown = RR.from_kiosk("flux_capacitor: <script>alert(1)</script>")
    assert rollout_words.html(EN, unknown) == \
        '<code class="id">flux_capacitor</code> <code class="id">&lt;script&gt;alert(1)&lt;/script&gt;</code>'
    no_id = RR.from_kiosk("<img src=x>")
    assert rollout_words.html(ZH, no_id) == '<code class="id">&lt;img src=x&gt;</code>'
    note = RR.operator("aborted_by_operator", "<i>field report</i>")
    assert rollout_words.html(ZH, note) == '由操作员中止 <code class="id">&lt;i&gt;field report&lt;/i&gt;</code>'


def test_a_stored_reason_that_is_not_a_known_shape_is_shown_not_trusted():
    assert RR.normalize({"code": "error_threshold", "params": {"wave": 1, "x": {"nested": 1}, "y": True}}) == \
        {"code": "error_threshold", "params": {"wave": 1}}
    assert rollout_words.plain(EN, {"code": "error_threshold", "params": {"wave": 1}}).startswith(
        "wave 1: – of – kiosks failed")  # a missing param reads as a dash, never an error
    odd = RR.normalize({"code": "drop table", "params": {}})
    assert odd["code"] == "text" and rollout_words.plain(EN, odd).startswith("{")


@pytest.mark.parametrize(("old", "state", "code", "params"), [
    ("wave 2: 4 of 346 kiosks failed (error threshold 1.0% of the wave, at least 1: 4 kiosks)", "", "error_threshold",
     {"wave": 2, "failed": 4, "counted": 346, "threshold": 0.01, "min": 1, "limit": 4}),
    ("wave 0: 1 of 4 kiosks succeeded (success threshold 95%)", "", "success_threshold",
     {"wave": 0, "succeeded": 1, "counted": 4, "threshold": 0.95}),
    ("wave 3 waits for approval", "", "awaiting_approval", {"wave": 3}),
    ("no final state 3600 s after it was sent", "timed_out", "timed_out", {"timeout": 3600}),
    ("offline when its wave started", "skipped", "offline", {}),
    ("paused by an operator", "", "paused_by_operator", {}),
    ("no targeted kiosk is online on an older release", "", "no_targets", {}),
    ("crashed: exit status 1", "rolled_back", "kiosk", {"id": "crashed", "detail": "exit status 1"}),
    ("field report", "", "text", {"text": "field report"}),  # an operator's own words, kept as they are
])
def test_sentences_stored_by_an_older_controller_read_as_codes(old, state, code, params):
    assert RR.normalize(old, state) == {"code": code, "params": params}
