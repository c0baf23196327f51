"""Session view-model: flows of every reference service, idle timeout, privacy wipe, faults.

Pure Python: no window, time passed in.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from contract.catalogue import load_default
from kiosk_ui import theme
from kiosk_ui.devices import ResidentIdentity
from kiosk_ui.i18n import LANGUAGES, catalogue
from kiosk_ui.viewmodels.maintenance import MaintenanceGate, hash_pin
from kiosk_ui.viewmodels.results import local_date, receipt_items, result_lines
from kiosk_ui.viewmodels.session import Effect, SessionViewModel


def ident(kind="id_card"):
    return ResidentIdentity(kind, "测试居民一", "440106199003071234", {"valid_until": "20400101"})


KEY = bytes(range(32))


@pytest.fixture
def vm():
    v = SessionViewModel(load_default(), ref_key=KEY, kiosk_id="k1")
    v.online = True
    return v


def kinds(effects):
    return [e.kind for e in effects]


def test_queue_ticket_flow(vm):
    assert "speak" in kinds(vm.start(0))
    assert vm.screen == "menu"
    assert vm.choose_service("queue_ticket", 1) == [Effect("speak", {"text": "请选择要办理的业务"})]
    assert vm.screen == "step" and [o for o, _ in vm.step_options()] == ["general", "social", "civil"]
    eff = vm.choose_option("social", 2)
    assert eff == [Effect("call", {"service": "queue_ticket", "op": "take", "args": {"counter": "social"},
                                   "purpose": "result"})]
    vm.call_done("result", {"number": "B001", "counter": "social", "ahead": 2, "wait_minutes": 12}, 3)
    assert vm.screen == "result"
    assert result_lines(vm.service, vm.result, vm.answers, None, "en")[0] == "Your number: B001"
    assert kinds(vm.print_result(4)) == ["print"] and vm.screen == "printing"
    vm.print_done(True, "", 5)
    assert vm.screen == "result" and vm.print_state == "printed"
    vm.finish(6)
    assert vm.screen == "rating"
    vm.set_rating(4, 7)
    vm.toggle_tag("fast", 7)
    vm.toggle_tag("not-a-tag", 7)
    eff = vm.submit_rating(8)
    assert eff[0].args["args"] == {"service": "queue_ticket", "stars": 4, "tags": ["fast"]}
    assert vm.screen == "done"
    assert kinds(vm.done_tick(20)) == ["reset_devices", "watch_cards"] and vm.screen == "attract"


def test_certificate_flow_sends_only_masked_id_and_prints(vm):
    vm.start(0)
    eff = vm.choose_service("certificate", 1)
    assert eff[0] == Effect("read_card", {"kind": "id_card"}) and vm.screen == "identify"
    person = ident()
    vm.identity_done(person, 2)
    assert vm.identity.masked_name() == "测*****"[:len("测试居民一")]
    vm.confirm_identity(3)
    eff = vm.choose_option("residence", 4)
    args = eff[0].args["args"]
    assert args == {"kind": "residence", "holder_name": "测试居民一", "id_masked": "4401**********1234"}
    assert "440106199003071234" not in json.dumps(eff[0].args)
    # Receipt-only output prints by itself.
    eff = vm.call_done("result", {"code": "ABCDEFGHJK", "qr": "KIOSK-CERT:ABCDEFGHJK", "kind": "residence",
                                  "issued_at": 0, "issued_date": "2026-01-01"}, 5)
    assert "print" in kinds(eff)
    items = receipt_items(vm.service, vm.result, vm.answers, vm.identity, "zh-CN", "k1", 5)
    assert {"qr": "KIOSK-CERT:ABCDEFGHJK"} in items
    printed = json.dumps(items, ensure_ascii=False)
    assert "440106199003071234" not in printed
    # The receipt's time is the fleet's clock (Asia/Shanghai by default), whatever the Pi's zone.
    assert {"text": "1970-01-01 08:00  k1", "align": "center"} in items
    in_utc = receipt_items(vm.service, vm.result, vm.answers, vm.identity, "zh-CN", "k1", 5, zone="UTC")
    assert {"text": "1970-01-01 00:00  k1", "align": "center"} in in_utc
    # The paper names the holder once, in full, with the masked number; the screen masks both.
    assert printed.count("测试居民一") == 1 and "4401**********1234" in printed
    shown = result_lines(vm.service, vm.result, vm.answers, vm.identity, "zh-CN")
    assert "测试居民一" not in " ".join(shown) and "测****" in " ".join(shown)


def test_card_left_behind_is_prompted_then_reported_once(vm):
    vm.start(0)
    vm.choose_service("certificate", 1)
    vm.identity_done(ident(), 2)
    assert vm.used_card()
    vm.end_session(3)
    assert not vm.used_card()
    eff = vm.cards_seen({"id_reader"}, 4)
    assert eff == [Effect("speak", {"key": "card_left.prompt", "always": True})]
    assert vm.cards_seen({"id_reader"}, 5) == []  # said once, not on every look
    assert vm.left_card_tick(63) == []
    eff = vm.left_card_tick(64)
    assert eff == [Effect("event", {"type": "card_left_behind", "fields": {"reader": "id_reader", "seconds": 60}})]
    assert vm.left_card_tick(100) == []
    vm.cards_seen(set(), 101)
    assert vm.left_cards == {}


def test_card_from_before_the_session_is_not_read(vm):
    vm.start(0)
    vm.choose_service("certificate", 1)
    eff = vm.left_card_on_reader(2)
    assert vm.message == "identify.card_left_on" and vm.identity is None and kinds(eff) == ["speak"]
    vm.identity_done(ident(), 3)
    assert vm.left_card_on_reader(4) == []  # the resident's own card was read meanwhile


def test_paper_out_offers_screen_and_window(vm):
    vm.start(0)
    vm.choose_service("queue_ticket", 0)
    vm.choose_option("general", 0)
    vm.call_done("result", {"number": "A001", "counter": "general", "ahead": 0, "wait_minutes": 0}, 0)
    vm.print_result(1)
    vm.print_done(False, "paper_out", 2)
    assert vm.screen == "print_failed" and vm.message == "print.paper_out"
    vm.show_on_screen(3)
    assert vm.screen == "result" and vm.message == "print.shown_instead"


def test_appointment_asks_backend_for_slots(vm):
    vm.start(0)
    vm.choose_service("appointment", 0)
    vm.identity_done(ident(), 1)
    vm.confirm_identity(1)
    eff = vm.choose_option("centre", 2)
    assert eff[0].args["op"] == "slots" and vm.screen == "working"
    vm.call_done("options", {"slots": [{"id": "2026-01-02 09:00", "label": "2026-01-02 09:00", "free": 4}]}, 3)
    assert vm.screen == "step" and vm.step_options() == [("2026-01-02 09:00", "2026-01-02 09:00")]
    eff = vm.choose_option("2026-01-02 09:00", 4)
    assert eff[0].args["args"]["resident_ref"] == ident().ref(KEY) and len(ident().ref(KEY)) == 32
    vm.call_failed("slot_full", 5)
    assert vm.screen == "failed" and vm.message == "error.slot_full"


def test_feedback_call_back_number_typed_checked_and_wiped(vm):
    vm.start(0)
    vm.choose_service("feedback", 0)
    vm.choose_option("safety", 1)
    vm.choose_option("parking", 1)
    vm.choose_option("urgent", 2)
    step = vm.current_step()
    assert vm.screen == "step" and step.input == "phone" and step.optional and vm.step_options() == []
    for ch in "123✓":
        assert vm.entry_key(ch, 3) == []
    assert vm.message == "entry.phone_invalid" and vm.answers.get("phone") is None
    vm.entry_key("C", 4)
    assert vm.entry == "" and vm.message == ""
    for ch in "138123456789":  # one digit too many is ignored
        vm.entry_key(ch, 5)
    assert vm.entry == "13812345678"
    eff = vm.entry_key("✓", 6)
    assert eff[0].args["args"] == {"category": "safety", "problem": "parking", "urgency": "urgent",
                                   "phone": "13812345678"}
    vm.call_done("result", {"ref": "F2511240001", "reply_days": 1, "call_back": True}, 7)
    assert result_lines(vm.service, vm.result, vm.answers, None, "zh-CN")[1:] == [
        "问题：乱停车、占用通道", "工作人员将在 1 个工作日内致电 138****5678"]
    vm.end_session(8)
    assert vm.answers == {} and vm.entry == ""
    # Skipped: no number in the request, the usual answer.
    vm.start(9)
    vm.choose_service("feedback", 9)
    vm.choose_option("other", 9)
    vm.choose_option("praise", 9)
    vm.choose_option("normal", 9)
    vm.entry_key("1", 10)
    assert vm.choose_option("1", 10) == [] and vm.skip_step(10)[0].args["args"] == {
        "category": "other", "problem": "praise", "urgency": "normal"}
    assert vm.skip_step(11) == []  # not on an input step any more


def test_feedback_problems_follow_the_category_and_back_changes_them(vm):
    vm.start(0)
    vm.choose_service("feedback", 0)
    vm.choose_option("facilities", 1)
    assert [o for o, _ in vm.step_options()] == ["street_light", "lift", "water_leak", "other"]
    assert vm.choose_option("parking", 2) == [] and vm.answers == {"category": "facilities"}  # not offered here
    vm.set_language("en", 2)
    assert dict(vm.step_options())["lift"] == "Lift broken"
    vm.back(3)  # the resident changes the category: the problems change with it
    vm.choose_option("safety", 4)
    assert [o for o, _ in vm.step_options()] == ["parking", "ebike_charging", "suspicious", "other"]


def test_resident_reference_is_keyed_and_never_the_plain_hash():
    import hashlib

    a, b = ident().ref(KEY), ident().ref(bytes(32))
    assert a != b  # another fleet's key: another reference, so refs cannot be matched across fleets
    assert a == ident().ref(KEY) and ident("ss_card").ref(KEY) != a
    # Without the key, trying every ID number against a plain hash would find the resident.
    for plain in (hashlib.sha256(b"440106199003071234").hexdigest(),
                  hashlib.sha256(b"kiosk-resident-v1:id_card:440106199003071234").hexdigest()):
        assert a not in plain
    with pytest.raises(ValueError):
        ident().ref(b"")


def test_card_faults_retry_and_reader_down(vm):
    vm.start(0)
    vm.choose_service("volunteer", 0)
    assert kinds(vm.identity_failed("card_moved", 1)) == ["read_card"]
    assert vm.message == "identify.card_moved"
    assert vm.identity_failed("reader_unavailable", 2) == []
    late = ident()
    vm.back(3)
    vm.identity_done(late, 4)  # the read finished after the resident left: wiped, not kept
    assert late.kind == "wiped" and vm.identity is None


def test_offline_menu_and_refusal(vm):
    vm.online = False
    vm.start(0)
    avail = {s.id: ok for s, ok in vm.menu("12:00")}
    assert avail["queue_ticket"] is True and avail["certificate"] is False
    assert vm.choose_service("certificate", 1) == [] and vm.message == "error.offline_service"
    vm.choose_service("notices", 1)
    assert vm.screen == "menu"


def test_idle_timeout_countdown_and_wipe(vm):
    vm.start(100)
    vm.choose_service("volunteer", 100)
    person = ident()
    vm.identity_done(person, 101)
    vm.set_language("en", 101)
    assert vm.countdown(140) is None
    assert vm.countdown(146) == pytest.approx(15.0)
    assert vm.tick(150) == []
    assert kinds(vm.tick(161)) == ["reset_devices", "watch_cards"]
    assert vm.screen == "attract" and vm.language == "zh-CN"
    assert person.name == "" and person.number == ""
    state = vm.resident_state()
    assert all(v in (None, "", 0, [], {}) for v in state.values()), state


def test_elderly_mode_doubles_timeouts(vm):
    vm.start(0)
    vm.toggle_elderly(0)
    assert vm.timeouts() == (120.0, 30.0)
    assert vm.countdown(85) is None and vm.countdown(100) == pytest.approx(20.0)
    vm.end_session(200)
    assert vm.elderly is False


def test_mode_change_waits_for_the_resident(vm):
    vm.start(0)
    vm.choose_service("queue_ticket", 0)
    vm.set_mode("out_of_service", 1)
    assert vm.screen == "step"
    vm.end_session(2)
    assert vm.screen == "out_of_service"
    assert vm.start(3) == [] and vm.screen == "out_of_service"
    vm.set_mode("normal", 4)
    assert vm.screen == "attract"


def test_catalogue_change_changes_menu(vm):
    from contract.catalogue import load_default_document, parse

    doc = load_default_document()
    doc["services"][0]["enabled"] = False
    vm.set_catalogue(parse(doc))
    assert "queue_ticket" not in [s.id for s, _ in vm.menu("12:00")]


def test_maintenance_gate():
    gate = MaintenanceGate(hash_pin("2468", iterations=1000))
    assert [gate.corner_tap(t) for t in (0, 0.5, 1, 1.5)] == [False] * 4
    assert gate.corner_tap(2.0) is True
    assert not gate.corner_tap(10) and not gate.corner_tap(20)  # too slow
    assert gate.try_pin("2468", 30)
    for _ in range(5):
        assert not gate.try_pin("0000", 31)
    assert gate.locked_for(31) == 60 and not gate.try_pin("2468", 40)
    assert gate.try_pin("2468", 92)
    assert MaintenanceGate("").corner_tap(0) is False


def test_translations_complete_and_traditional():
    keys = set(catalogue("zh-CN"))
    for lang in LANGUAGES:
        assert set(catalogue(lang)) == keys, lang
    assert catalogue("zh-HK")["home.touch_to_start"] == "輕觸螢幕開始辦理"
    used = set()
    root = Path(__file__).resolve().parents[2] / "kiosk_ui"
    import re

    for f in list(root.rglob("*.py")) + list(root.rglob("*.kv")):
        if "agent" in f.parts:
            continue
        used |= set(re.findall(r'''(?:tr|app\.t)\(\s*f?["']([a-z_]+\.[a-zA-Z_.-]+)["']''', f.read_text()))
    assert used and used <= keys, used - keys


def test_contrast_and_sizes():
    for name, (fg, bg) in theme.PAIRS.items():
        assert theme.contrast(fg, bg) >= 4.5, name
    assert theme.SMALLEST_TEXT * theme.ELDERLY_SCALE >= 18
    assert theme.LARGEST_TEXT * theme.ELDERLY_SCALE >= 30
    assert theme.BUTTON_HEIGHT >= 60 and theme.button_height(theme.ELDERLY_SCALE) >= theme.BUTTON_HEIGHT


def test_certificate_check_by_qr_and_garbage(vm):
    vm.start(0)
    assert kinds(vm.choose_service("certificate_check", 0))[0] == "read_card"
    junk = ResidentIdentity("qr_voucher", "", "%%garbage%%")
    assert kinds(vm.identity_done(junk, 1)) == ["read_card"] and vm.message == "identify.bad_code"
    eff = vm.identity_done(ResidentIdentity("qr_voucher", "", "KIOSK-CERT:ABCDEFGHJK"), 2)
    assert eff[0].args["op"] == "verify" and eff[0].args["args"] == {"code": "KIOSK-CERT:ABCDEFGHJK"}
    vm.call_done("result", {"valid": False, "code": "ABCDEFGHJK"}, 3)
    assert result_lines(vm.service, vm.result, vm.answers, vm.identity, "en")[0].startswith("No such certificate")


def test_social_security_pin_flow(vm):
    vm.start(0)
    vm.choose_service("social_security", 0)
    vm.pin_needed(1)
    assert vm.screen == "card_pin" and vm.message == "identify.pin"
    assert vm.card_pin_entered("12", 2) == [] and vm.screen == "card_pin"
    eff = vm.card_pin_entered("123456", 3)
    assert eff == [Effect("read_card", {"kind": "ss_card", "pin": "123456"})] and vm.screen == "identify"
    vm.pin_needed(4, tries=2)
    assert vm.message == "identify.pin_wrong" and vm.pin_tries == 2
    assert "123456" not in repr(vm.resident_state())
    vm.end_session(5)
    assert vm.pin_tries is None


def test_card_dates_are_shown_in_the_residents_language():
    assert local_date("20300101", "zh-CN") == "2030年1月1日"
    assert local_date("20301231", "zh-HK") == "2030年12月31日"
    assert local_date("20300101", "en") == "1 January 2030"
    assert local_date("长期", "zh-CN") == "长期" and local_date("20301301", "en") == "20301301"
    person = ResidentIdentity("ss_card", "测试居民一", "A12345678", {"valid_until": "20300101"})
    svc = load_default().get("social_security")
    lines = result_lines(svc, {"enrolled": False}, {}, person, "en")
    assert "1 January 2030" in lines[0] and "20300101" not in " ".join(lines)


def test_references_residents_read_have_no_look_alike_characters():
    from controller.service_backend.operations import CODE_ALPHABET, _code

    for a, b in ("0O", "1I", "5S", "8B", "2Z"):
        assert not (a in CODE_ALPHABET and b in CODE_ALPHABET), (a, b)
    assert not set("OISBZ") & set(_code(200))


def test_every_step_of_a_journey_has_its_spoken_prompt(vm):
    """Elderly mode speaks what each screen asks (the app speaks only then, or when told always)."""
    said = [e for e in vm.start(0) if e.kind == "speak"]
    for fn, args in [(vm.choose_service, ("certificate",)), (vm.identity_done, (ident(),)),
                     (vm.confirm_identity, ()), (vm.choose_option, ("residence",))]:
        effects = fn(*args, 1)
        said += [e for e in effects if e.kind == "speak"]
    effects = vm.call_done("result", {"code": "ACDEFGHJKL", "qr": "KIOSK-CERT:ACDEFGHJKL", "kind": "residence",
                                      "issued_date": "2026-01-01"}, 2)
    said += [e for e in effects if e.kind == "speak"]
    said += [e for e in vm.print_done(True, "", 3) if e.kind == "speak"]
    said += [e for e in vm.finish(4) if e.kind == "speak"]
    said += [e for e in vm.skip_rating(5) if e.kind == "speak"]
    keys = [e.args.get("key") or e.args.get("text") for e in said]
    assert keys == ["menu.title", "identify.id_card", "identify.confirm", "请选择证明类型", "result.ready",
                    "print.done", "rating.title", "done.take_card"], keys


def test_age_from_the_card_or_the_id_number_counted_in_the_kiosk_zone():
    from datetime import date, datetime
    from zoneinfo import ZoneInfo

    from kiosk_ui.viewmodels.age import age_on, birth_date, is_elderly

    assert birth_date("19590307", "") == date(1959, 3, 7)
    assert birth_date("", "440106195903071234") == date(1959, 3, 7)  # GB 11643: the date inside the number
    assert birth_date("长期", "H00000000") is None and birth_date("19591301", "") is None
    assert age_on(date(1960, 2, 29), date(2025, 2, 28)) == 64 and age_on(date(1960, 2, 29), date(2025, 3, 1)) == 65
    # The 65th birthday begins at midnight in Shanghai, 16:00 UTC the day before.
    eve = datetime(2024, 3, 6, 23, 59, tzinfo=ZoneInfo("Asia/Shanghai")).timestamp()
    assert not is_elderly("19590307", "", min_age=65, now=eve, zone="Asia/Shanghai")
    assert is_elderly("19590307", "", min_age=65, now=eve + 60, zone="Asia/Shanghai")
    assert not is_elderly("19590307", "", min_age=65, now=eve + 60, zone="UTC")  # still the 6th in UTC
    assert not is_elderly("19000101", "", min_age=0, now=eve, zone="Asia/Shanghai")  # 0: off
    assert not is_elderly("", "", min_age=65, now=eve, zone="Asia/Shanghai")  # no date: never guessed


def test_elderly_mode_switches_on_for_an_old_enough_card_holder_until_the_session_ends():
    from datetime import datetime
    from zoneinfo import ZoneInfo

    now = datetime(2026, 3, 11, 10, 0, tzinfo=ZoneInfo("Asia/Shanghai")).timestamp()
    v = SessionViewModel(load_default(), ref_key=KEY, kiosk_id="k1", elderly_auto_age=65, zone="Asia/Shanghai")
    v.online = True

    def read(birth, number="440106199003071234"):
        v.start(now)
        v.choose_service("certificate", now)
        return v.identity_done(ResidentIdentity("id_card", "测试居民一", number, {"birth": birth}), now)

    assert kinds(read("19900307")) == ["speak"] and v.elderly is False  # 36: nothing changes
    v.end_session(now)
    read("19500101")
    assert v.elderly is True and v.timeouts()[0] == 2 * SessionViewModel(load_default(), ref_key=KEY).timeouts()[0]
    v.confirm_identity(now)
    assert v.elderly is True  # for the whole session
    v.end_session(now)
    assert v.elderly is False  # the next resident starts in normal mode
    read("", "440106195001011234")  # no birth field: the ID number's date counts
    assert v.elderly is True
    v.end_session(now)
    off = SessionViewModel(load_default(), ref_key=KEY, kiosk_id="k1")  # the default: 0, off
    off.online = True
    off.start(now)
    off.choose_service("certificate", now)
    off.identity_done(ResidentIdentity("id_card", "测试居民一", "440106195001011234", {"birth": "19500101"}), now)
    assert off.elderly is False


def test_elderly_auto_age_is_validated_with_its_field():
    from foundation.errors import ConfigError
    from foundation.settings import KioskConfig, from_mapping

    base = {"kiosk_id": "k1", "broker": "mqtt://localhost:1883", "data_dir": "/tmp/k"}
    assert from_mapping(KioskConfig, base).elderly_auto_age == 0
    assert from_mapping(KioskConfig, {**base, "elderly_auto_age": 65}).elderly_auto_age == 65
    for bad in (30, 200, -1):
        with pytest.raises(ConfigError) as err:
            from_mapping(KioskConfig, {**base, "elderly_auto_age": bad})
        assert err.value.field == "elderly_auto_age" and str(bad) in str(err.value)
