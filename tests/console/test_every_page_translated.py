"""Every console page, rendered from a real fleet, speaks the operator's language.

A real Controller on a real Mosquitto, a real kiosk runtime whose printer is the hardware
simulator (paper out raises an alarm and a required action; a test print is a real command with
a result), services used through the real service backend (tickets called, a request, ratings
with tags), notices, accounts, tokens, enrolment tokens, config applied and reported. Then each
page is rendered in zh-CN, zh-HK and en. The check is built from the data, not from a list of pages:

- a Chinese page (Simplified or Traditional) fails on any id of the console's vocabularies
  (modes, devices, actions, rules, groups, identification kinds, services, tags, audit actions,
  ...) or any English word the English catalogue uses, in its visible text or its placeholders,
  titles and labels;
- an English page fails on any multi-word id (``out_of_service``, ``id_card``, ``paper_out``).
Acronyms (CSV, ID, SoC) and the fleet's own names (kiosk ids, users, sites) are not words.
"""

from __future__ import annotations

import html
import re
import sqlite3
import time

import pytest
from starlette.routing import Route

from contract import signing
from contract.catalogue import load_default_document
from controller.alarms import load_rules
from controller.server import Controller
from controller.service_backend import ensure_schema, handle_request
from controller.store import DB_NAME
from controller.web import console_reads, i18n, vocabulary
from controller.web.app import build_console, create_app
from foundation.settings import ControllerConfig, KioskConfig, from_mapping
from kiosk_ui.agent.runtime import KioskRuntime
from tests.console.conftest import PASSWORDS, ROLES, login
from tests.console.test_i18n import SIMPLIFIED_ONLY
from tests.fleet.conftest import wait_until

SITE, OTHER_SITE = "gz-th01", "gz-yx02"
PRINTING, PLAIN = "GD-TH-0001", "GD-YX-0002"


def _vocabulary_ids() -> set[str]:
    ids = {v for values in vocabulary.VOCABULARIES.values() for v in values}
    ids |= set(vocabulary.catalogue_ids("service")) | set(vocabulary.catalogue_ids("tag"))
    ids |= {r.id for r in load_rules()} | {r.severity for r in load_rules()}
    return ids


def _english_words() -> set[str]:
    """Every English word the product says: the console's English catalogue, the service
    catalogue's English names, the alarm rules' English messages, the v1 kiosks' action sentences."""
    texts = list(i18n.catalogue("en").values()) + [r.message for r in load_rules()] + list(vocabulary.LEGACY_ACTIONS)
    doc = load_default_document()
    texts += [n["names"]["en"] for key in ("services", "rating_tags") for n in doc[key]]
    texts += [n["titles"]["en"] for n in doc["notices"]]
    words = set()
    for text in texts:
        words |= {w.lower() for w in re.findall(r"[A-Za-z]{3,}", re.sub(r"{\w+}", " ", text))}
    return words


IDS = _vocabulary_ids()
WORDS = _english_words() | {i for i in IDS if i.isalpha() and len(i) > 2}
NAMES = {"ada", "otto", "vera", "bi", "testclient"}  # operators, the token "ada-bi", the test client's host


def visible(page: str) -> str:
    """What a reader sees: text and the placeholders, titles, labels and alt texts of elements."""
    page = re.sub(r"(?s)<(script|style)\b.*?</\1>", " ", page)
    page = re.sub(r'(?s)<a\b[^>]*\blang="[^"]*"[^>]*>.*?</a>', " ", page)  # "English" links to the English page
    page = re.sub(r'(?s)<code class="id">.*?</code>', " ", page)  # codes typed as they are (service ids, commands)
    attrs = re.findall(r'\b(?:placeholder|title|aria-label|alt)="([^"]*)"', page)
    text = re.sub(r"(?s)<[^>]+>", " ", page)
    return html.unescape(" ".join([text, *attrs]))


def untranslated(page: str, lang: str) -> list[str]:
    text = visible(page)
    # Codes and references the operator types or reads back as they are: <code> is stripped above,
    # but its text stays; the fleet's names are letters, digits and dashes in capitals or with digits.
    # Words stand alone: letters inside a hex or base64 id ("3f9add2c") are not words.
    tokens = re.findall(r"(?<![A-Za-z0-9])[A-Za-z][A-Za-z_.]*[A-Za-z](?![A-Za-z0-9])", text)
    if lang == "en":
        return sorted({t for t in tokens if ("_" in t or "." in t) and t in IDS})
    bad = set()
    for t in tokens:
        if t.isupper() or t.lower() in NAMES or t == "SoC":
            continue  # acronyms (CSV, ID, SoC) and names
        # An id, a word the product says in English, or a field name (snake_case) of some payload.
        if t in IDS or t.lower() in WORDS or "_" in t:
            bad.add(t)
    return sorted(bad)


# Machine endpoints (JSON, CSV, the event stream, metrics) and redirects are not pages.
NOT_PAGES = ("/api/", "/events", "/metrics", "/openapi.json", "/healthz", "/favicon.ico", "/lang/",
             "/reports/report.csv")
# A sample for each path parameter; a new page with a parameter not here fails the test until added.
SAMPLES = {"kiosk_id": [PRINTING, PLAIN, "GD-NONE-9999"], "site": [SITE],
           "name": ["usage", "trend", "feedback", "failures", "availability"]}
# Views of one page that show different things (filters, a form filled to edit).
VIEWS = [f"/fleet?site={SITE}", f"/config?layer=site&target={SITE}", "/requests?status=all", "/services?edit=n1"]


def page_paths(app) -> list[str]:
    """Every page the console serves, from its routes: each GET route that is not a machine
    endpoint, its parameters filled with the fleet's own ids, plus the views above."""
    out = []
    for route in app.routes:
        if not isinstance(route, Route) or "GET" not in (route.methods or ()) or route.path == "/" \
                or route.path.startswith(NOT_PAGES):
            continue
        paths = [route.path]
        for name in re.findall(r"{(\w+)}", route.path):
            assert name in SAMPLES, f"no sample value for {{{name}}} in {route.path}: add one to SAMPLES"
            paths = [p.replace(f"{{{name}}}", v) for p in paths for v in SAMPLES[name]]
        out += paths
    assert len(out) > 15, out
    return out + VIEWS


@pytest.fixture
def fleet(broker, tmp_path, sim):
    data = tmp_path / "controller-data"
    ctl = Controller(from_mapping(ControllerConfig, {"broker": broker.url, "data_dir": str(data), "keepalive": 5}))
    ctl.start()
    key = signing.public_key_text(ctl.key)
    printer_proc, printer_tty = sim("printer", out=tmp_path / "receipts")
    kiosks = []
    for kiosk_id, site, devices in ((PRINTING, SITE, {"printer": str(printer_tty)}), (PLAIN, OTHER_SITE, {})):
        cfg = from_mapping(KioskConfig, {"kiosk_id": kiosk_id, "broker": broker.url, "site": site,
                                         "data_dir": str(tmp_path / kiosk_id), "controller_public_key": key,
                                         "keepalive": 2, "devices": devices,
                                         "telemetry_interval": 1})
        k = KioskRuntime(cfg, reboot_command=("true",), device_poll=0.2)
        k.start()
        kiosks.append(k)
    console = build_console(data, ctl)
    for name, pw in PASSWORDS.items():
        console.accounts.add_user(name, ROLES[name], pw)
    app = create_app(console, start_poller=True)
    yield ctl, console, app, printer_proc, kiosks
    for k in kiosks:
        k.stop()
    ctl.stop()
    console.accounts.close()
    console_reads.close_all()


def _use_services(data_dir):
    conn = sqlite3.connect(data_dir / DB_NAME)
    ensure_schema(conn)
    now = time.time()
    for body in ({"service": "queue_ticket", "op": "take", "args": {"counter": "general"}},
                 {"service": "queue_ticket", "op": "take", "args": {"counter": "social"}},
                 {"service": "feedback", "op": "submit", "args": {"category": "facilities", "urgency": "urgent",
                                                                 "phone": "13812345678"}},
                 {"service": "rating", "op": "submit", "args": {"service": "queue_ticket", "stars": 4,
                                                                "tags": ["fast", "clear"]}},
                 {"service": "rating", "op": "submit", "args": {"service": "certificate", "stars": 2,
                                                                "tags": ["hard"]}}):
        assert handle_request(conn, PRINTING, body, now)["ok"]
    conn.close()


def test_every_console_page_in_each_language(fleet):
    ctl, console, app, printer, kiosks = fleet
    ada = login(app, "ada")
    try:
        wait_until(lambda: ada.get("/api/v1/kiosks").json()["total"] == 2, 15, "both kiosks registered")
        # A fault with an alarm and a required action, acknowledged with a note.
        printer.send({"cmd": "paper", "state": "out"})
        alarm = wait_until(lambda: [a for a in ada.get("/api/v1/alarms").json()["items"] if a["kind"] == "paper_out"],
                           15, "paper_out alarm")[0]
        assert ada.post(f"/api/v1/alarms/{alarm['id']}/ack", json={"note": "纸已在路上"}).status_code == 200
        printer.send({"cmd": "paper", "state": "ok"})
        wait_until(lambda: not [a for a in ada.get("/api/v1/alarms").json()["items"] if a["kind"] == "paper_out"],
                   15, "paper_out cleared")
        # A real command with a real result, a config change applied and reported.
        cmd = ada.post(f"/api/v1/kiosks/{PRINTING}/commands", json={"name": "test_print"}).json()
        wait_until(lambda: ada.get(f"/api/v1/commands/{cmd['id']}").json()["status"] == "succeeded", 20, "test print")
        r = ada.post("/config", data={"csrf": ada.headers["x-csrf-token"], "layer": "fleet", "target": "",
                                      "text": '{"volume": 40}', "action": "apply"})
        assert r.status_code == 200
        wait_until(lambda: (console.backend.config_state(PRINTING) or {}).get("reported_version"), 15, "config reported")
        _use_services(console.data_dir)
        assert ada.post(f"/api/v1/sites/{SITE}/queue/next", json={"counter": "general"}).status_code == 200
        r = ada.post("/services", data={"csrf": ada.headers["x-csrf-token"], "action": "publish", "notice_id": "water",
                                        "title_zh-CN": "周三停水", "title_zh-HK": "週三停水", "title_en": "Water off",
                                        "group": ["elderly", "women"]})
        assert r.status_code == 200
        ada.post("/accounts", data={"csrf": ada.headers["x-csrf-token"], "action": "create_token",
                                    "name": "ada-bi", "role": "viewer"})
        ada.post("/enrolment", data={"csrf": ada.headers["x-csrf-token"], "site": SITE, "ttl_minutes": "60"})
        kiosks[1].agent.set_mode("maintenance")  # a mode the fleet page shows
        # A fault left open while the pages are read: an active alarm and a required action.
        printer.send({"cmd": "paper", "state": "low"})
        wait_until(lambda: [a for a in ada.get("/api/v1/alarms").json()["items"] if a["kind"] == "paper_low"],
                   15, "paper_low alarm")
        wait_until(lambda: "maintenance" in ada.get(f"/api/v1/kiosks/{PLAIN}").text, 15, "maintenance mode shown")

        pages = page_paths(app)
        problems = {}
        for lang in i18n.LANGS:
            ada.cookies.set("lang", lang)
            for path in pages:
                r = ada.get(path)
                assert r.status_code in (200, 404), (lang, path, r.status_code)
                if r.headers["content-type"].startswith("image/svg"):  # a chart: its words are <text>
                    r_text = " ".join(re.findall(r"<text[^>]*>([^<]*)</text>", r.text))
                else:
                    assert r.headers["content-type"].startswith("text/html"), (path, r.headers["content-type"])
                    r_text = r.text
                bad = untranslated(r_text, lang)
                if bad:  # each with where it stands, to find the template or the data
                    text = " ".join(visible(r_text).split())
                    problems[(lang, path)] = [text[max(0, text.find(b) - 40):text.find(b) + 40] for b in bad]
        assert problems == {}, "\n".join(f"{k}: {v}" for k, v in sorted(problems.items()))
        # The data words are there, translated (not merely absent).
        ada.cookies.set("lang", "zh-CN")
        zh = i18n.Translator("zh-CN")
        assert zh.term("action", "bring_paper") in ada.get(f"/kiosks/{PRINTING}").text
        assert zh.alarm_message({"kind": "paper_low", "subject": "printer"}) in ada.get("/alarms").text
        assert zh.term("mode", "maintenance") in ada.get("/fleet").text
        assert zh.term("tag", "fast") in ada.get("/reports").text
        assert zh.term("auditaction", "alarm.ack") in ada.get("/audit").text
        # In Traditional Chinese (zh-HK) too, and pages without operators' free text (the ack note
        # above is Simplified) carry no Simplified character at all: data words come from zh-HK.
        ada.cookies.set("lang", "zh-HK")
        hk = i18n.Translator("zh-HK")
        assert hk.term("action", "bring_paper") in ada.get(f"/kiosks/{PRINTING}").text
        assert hk.alarm_message({"kind": "paper_low", "subject": "printer"}) in ada.get("/alarms").text
        assert hk.term("tag", "fast") in ada.get("/reports").text
        for path in ("/fleet", "/reports", "/services", "/requests", f"/sites/{SITE}/queue", "/rollouts"):
            text = visible(ada.get(path).text)
            assert sorted(set(text) & SIMPLIFIED_ONLY) == [], path
    finally:
        ada.__exit__(None, None, None)


@pytest.mark.parametrize("lang", i18n.LANGS)
def test_the_sign_in_page_is_translated(app, anon, lang):
    anon.cookies.set("lang", lang)
    assert untranslated(anon.get("/login").text, lang) == []


def test_the_check_finds_what_it_looks_for():
    """The check itself: an id, an English word, an English-only id in an English page."""
    assert untranslated("<td>normal</td><td>打印机</td>", "zh-CN") == ["normal"]
    assert "Search" in untranslated('<input placeholder="Search kiosks">', "zh-CN")
    assert untranslated("<td>out_of_service</td><td>Printer</td>", "en") == ["out_of_service"]
    assert untranslated("<td>启动编号 3f9add2c</td>", "zh-CN") == []  # letters inside an id are not a word
    assert untranslated("<script>{\"mode\": \"normal\"}</script><td>正常服务 GD-TH-0001 ada CSV</td>", "zh-CN") == []


def test_every_vocabulary_id_has_a_text_in_every_language():
    for lang in i18n.LANGS:
        cat = i18n.catalogue(lang)
        missing = [f"{kind}.{v}" for kind, values in vocabulary.VOCABULARIES.items() for v in values
                   if f"{kind}.{v}" not in cat]
        assert missing == [], lang
        assert [r.id for r in load_rules() if f"alarmmsg.{r.id}" not in cat] == [], lang
    # What the legacy (contract v1) kiosks send as required actions is read as an id the console knows.
    assert set(vocabulary.LEGACY_ACTIONS.values()) <= set(vocabulary.VOCABULARIES["action"])
