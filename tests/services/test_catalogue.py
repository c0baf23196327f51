"""The service catalogue: the default one is valid, and bad documents name the wrong field."""

from __future__ import annotations

import copy

import pytest

from contract import catalogue
from foundation.errors import ConfigError


def test_default_catalogue_has_the_reference_services():
    cat = catalogue.load_default()
    ids = [s.id for s in cat.services]
    assert ids == ["queue_ticket", "appointment", "certificate", "certificate_check", "social_security", "volunteer", "notices", "feedback"]
    assert cat.get("queue_ticket").offline and not cat.get("certificate").offline
    assert cat.get("certificate").name("zh-HK") == "證明打印"
    assert len(cat.rating_tags) == 4


def test_hours_and_enabled_filter_the_menu():
    doc = catalogue.load_default_document()
    doc["services"][0]["hours"] = {"open": "08:30", "close": "17:30"}
    doc["services"][1]["enabled"] = False
    doc["services"][2]["hours"] = {"open": "22:00", "close": "06:00"}
    cat = catalogue.parse(doc)
    at_night = [s.id for s in cat.menu("23:00")]
    assert "queue_ticket" not in at_night and "appointment" not in at_night and "certificate" in at_night
    assert "queue_ticket" in [s.id for s in cat.menu("08:30")]
    assert "certificate" not in [s.id for s in cat.menu("12:00")]


def _feedback(doc):
    return next(s for s in doc["services"] if s["id"] == "feedback")


@pytest.mark.parametrize(("mutate", "field"), [
    (lambda d: d["services"][0].pop("names"), "services.queue_ticket.names"),
    (lambda d: d["services"][0]["names"].pop("zh-HK"), "services.queue_ticket.names.zh-HK"),
    (lambda d: d["services"][0].update(identification="face"), "services.queue_ticket.identification"),
    (lambda d: d["services"][0].update(output=["fax"]), "services.queue_ticket.output"),
    (lambda d: d["services"][0].update(hours={"open": "25:00"}), "services.queue_ticket.hours.open"),
    (lambda d: d["services"][0].update(enabled="yes"), "services.queue_ticket.enabled"),
    (lambda d: d["services"][1].update(id="queue_ticket"), "services"),
    (lambda d: d["services"][0]["steps"][0].pop("options"), "services.queue_ticket.steps[0]"),
    (lambda d: d.update(services=[]), "services"),
    (lambda d: _feedback(d)["steps"][-1].update(input="email"), "services.feedback.steps[3].input"),
    (lambda d: _feedback(d)["steps"][-1].update(optional="yes"), "services.feedback.steps[3].optional"),
    (lambda d: _feedback(d)["steps"][-1].pop("input"), "services.feedback.steps[3]"),
    # The problem step: its options follow the category answer, and every category has some.
    (lambda d: _feedback(d)["steps"][1].update(options_when="urgency"), "services.feedback.steps[1].options_when"),
    (lambda d: _feedback(d)["steps"][1]["options"][0].update(when=["weather"]),
     "services.feedback.steps[1].options[0].when"),
    (lambda d: _feedback(d)["steps"][1]["options"][0].update(when="environment"),
     "services.feedback.steps[1].options[0].when"),
    (lambda d: _feedback(d)["steps"][1]["options"][0].pop("when"), "services.feedback.steps[1].options[0].when"),
    (lambda d: _feedback(d)["steps"][1].update(options=[o for o in _feedback(d)["steps"][1]["options"]
                                                         if "other" not in o["when"]]),
     "services.feedback.steps[1].options"),
])
def test_bad_catalogue_names_the_field(mutate, field):
    doc = copy.deepcopy(catalogue.load_default_document())
    mutate(doc)
    with pytest.raises(ConfigError) as err:
        catalogue.parse(doc)
    assert err.value.field == field


def test_restrict_to_enabled_ids():
    cat = catalogue.restrict(catalogue.load_default(), ["queue_ticket", "notices"])
    assert [s.id for s in cat.menu("12:00")] == ["queue_ticket", "notices"]
    with pytest.raises(ConfigError) as err:
        catalogue.restrict(cat, "queue_ticket")
    assert err.value.field == "services"
