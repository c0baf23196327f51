"""The service catalogue: services as data (names in three languages, identification, steps, output,
opening hours), validated once at the edge. Both the controller and the kiosks use this module.

The catalogue travels in the desired config under the key ``services`` (the whole document of
``catalogue.json``), so an operator changes the kiosks' menus without a restart.
"""

from __future__ import annotations

import dataclasses
import json
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from foundation.errors import ConfigError

LANGS = ("zh-CN", "zh-HK", "en")
IDENTIFICATION = ("none", "id_card", "ss_card", "qr_voucher")
OUTPUTS = ("screen", "receipt")
INPUTS = ("phone",)  # keypad entries a step may ask for
# What a "phone" input accepts, on the kiosk and in the backend: a mainland mobile number or a
# 7-8 digit local fixed line.
PHONE = re.compile(r"1[3-9][0-9]{9}|[2-9][0-9]{6,7}")
DEFAULT_PATH = Path(__file__).with_name("catalogue.json")


@dataclass(frozen=True)
class Option:
    id: str
    names: dict[str, str]
    when: tuple[str, ...] = ()  # on a step with options_when: the earlier answers it is offered for


@dataclass(frozen=True)
class Step:
    field: str
    title: dict[str, str]
    options: tuple[Option, ...] = ()
    options_from: str = ""  # the options are asked of the backend (e.g. free appointment slots)
    input: str = ""  # typed on the keypad instead of chosen: "phone"
    optional: bool = False  # the resident may skip it
    # The field of an earlier step whose answer picks the options shown (a feedback problem by its
    # category): each option names in ``when`` the answers it belongs to.
    options_when: str = ""

    def options_for(self, answers: dict[str, str]) -> tuple[Option, ...]:
        """The options offered after ``answers`` (all of them on a step without options_when)."""
        if not self.options_when:
            return self.options
        return tuple(o for o in self.options if answers.get(self.options_when) in o.when)


@dataclass(frozen=True)
class Service:
    id: str
    names: dict[str, str]
    icon: str
    identification: str
    steps: tuple[Step, ...]
    output: tuple[str, ...]
    open: str
    close: str
    enabled: bool
    offline: bool = False  # still works when the controller is unreachable

    def name(self, lang: str) -> str:
        return self.names.get(lang) or self.names["zh-CN"]

    def is_open(self, hhmm: str) -> bool:
        """``hhmm`` is the local time as ``"HH:MM"``; close ``24:00`` means until midnight."""
        if self.open <= self.close:
            return self.open <= hhmm < self.close
        return hhmm >= self.open or hhmm < self.close  # across midnight


@dataclass(frozen=True)
class Catalogue:
    version: int
    services: tuple[Service, ...]
    notices: tuple[dict[str, Any], ...]
    rating_tags: tuple[Option, ...]

    def get(self, service_id: str) -> Service | None:
        return next((s for s in self.services if s.id == service_id), None)

    def menu(self, hhmm: str) -> list[Service]:
        return [s for s in self.services if s.enabled and s.is_open(hhmm)]


def _names(value: Any, where: str) -> dict[str, str]:
    if not isinstance(value, dict):
        raise ConfigError("expected a table of names by language", field=where)
    for lang in LANGS:
        if not isinstance(value.get(lang), str) or not value[lang].strip():
            raise ConfigError(f"missing the {lang} text", field=f"{where}.{lang}")
    return {lang: value[lang] for lang in LANGS}


def _hhmm(value: Any, where: str) -> str:
    ok = isinstance(value, str) and len(value) == 5 and value[2] == ":" and value[:2].isdigit() \
        and value[3:].isdigit() and (value == "24:00" or (int(value[:2]) < 24 and int(value[3:]) < 60))
    if not ok:
        raise ConfigError(f"expected HH:MM, got {value!r}", field=where)
    return value


def _option(d: Any, where: str) -> Option:
    if not isinstance(d, dict) or not isinstance(d.get("id"), str) or not d["id"]:
        raise ConfigError("an option needs an id", field=where)
    when = d.get("when", [])
    if not isinstance(when, list) or any(not isinstance(w, str) or not w for w in when):
        raise ConfigError(f"expected a list of option ids, got {when!r}", field=f"{where}.when")
    return Option(d["id"], _names(d.get("names"), f"{where}.names"), tuple(when))


def _check_options_when(step: Step, earlier: list[Step], where: str) -> None:
    """A step whose options depend on an earlier answer offers something for every such answer."""
    parent = next((s for s in earlier if s.field == step.options_when and s.options), None)
    if parent is None:
        raise ConfigError(f"must name an earlier step with options, got {step.options_when!r}",
                          field=f"{where}.options_when")
    known = {o.id for o in parent.options}
    for j, o in enumerate(step.options):
        unknown = sorted(set(o.when) - known) if o.when else ["(none)"]
        if unknown:
            raise ConfigError(f"must list answers of {parent.field}: {', '.join(sorted(known))}; got "
                              f"{', '.join(unknown)}", field=f"{where}.options[{j}].when")
    bare = sorted(k for k in known if not step.options_for({parent.field: k}))
    if bare:
        raise ConfigError(f"no option for {parent.field} {', '.join(bare)}", field=f"{where}.options")


def _service(d: Any, where: str) -> Service:
    if not isinstance(d, dict):
        raise ConfigError("expected a table", field=where)
    sid = d.get("id")
    if not isinstance(sid, str) or not sid.replace("_", "").isalnum():
        raise ConfigError(f"service id must be letters, digits and '_', got {sid!r}", field=f"{where}.id")
    where = f"services.{sid}"
    ident = d.get("identification", "none")
    if ident not in IDENTIFICATION:
        raise ConfigError(f"must be one of {', '.join(IDENTIFICATION)}, got {ident!r}", field=f"{where}.identification")
    output = d.get("output", ["screen"])
    if not isinstance(output, list) or not output or any(o not in OUTPUTS for o in output):
        raise ConfigError(f"must be a list of {', '.join(OUTPUTS)}, got {output!r}", field=f"{where}.output")
    steps = []
    for i, s in enumerate(d.get("steps", [])):
        sw = f"{where}.steps[{i}]"
        if not isinstance(s, dict) or not isinstance(s.get("field"), str):
            raise ConfigError("a step needs a field name", field=sw)
        opts = tuple(_option(o, f"{sw}.options[{j}]") for j, o in enumerate(s.get("options", [])))
        source = s.get("options_from", "")
        entry = s.get("input", "")
        if entry and entry not in INPUTS:
            raise ConfigError(f"must be one of {', '.join(INPUTS)}, got {entry!r}", field=f"{sw}.input")
        if not opts and not source and not entry:
            raise ConfigError("a step needs options, options_from or input", field=sw)
        optional = s.get("optional", False)
        if not isinstance(optional, bool):
            raise ConfigError(f"must be true or false, got {optional!r}", field=f"{sw}.optional")
        step = Step(s["field"], _names(s.get("title"), f"{sw}.title"), opts, str(source), entry, optional,
                    str(s.get("options_when", "")))
        if step.options_when:
            _check_options_when(step, steps, sw)
        steps.append(step)
    hours = d.get("hours", {"open": "00:00", "close": "24:00"})
    if not isinstance(hours, dict):
        raise ConfigError("expected a table with open and close", field=f"{where}.hours")
    enabled = d.get("enabled", True)
    if not isinstance(enabled, bool):
        raise ConfigError(f"expected true or false, got {enabled!r}", field=f"{where}.enabled")
    return Service(
        id=sid, names=_names(d.get("names"), f"{where}.names"), icon=str(d.get("icon", "")),
        identification=ident, steps=tuple(steps), output=tuple(output),
        open=_hhmm(hours.get("open", "00:00"), f"{where}.hours.open"),
        close=_hhmm(hours.get("close", "24:00"), f"{where}.hours.close"),
        enabled=enabled, offline=bool(d.get("offline", False)),
    )


def parse(doc: Any) -> Catalogue:
    """Validate a catalogue document; a ConfigError names the first wrong field."""
    if not isinstance(doc, dict):
        raise ConfigError("the service catalogue must be a JSON object", field="services")
    raw = doc.get("services")
    if not isinstance(raw, list) or not raw:
        raise ConfigError("expected a non-empty list of services", field="services")
    services = tuple(_service(d, f"services[{i}]") for i, d in enumerate(raw))
    ids = [s.id for s in services]
    dupes = sorted({i for i in ids if ids.count(i) > 1})
    if dupes:
        raise ConfigError(f"duplicate service ids: {', '.join(dupes)}", field="services")
    notices = []
    for i, n in enumerate(doc.get("notices", [])):
        if not isinstance(n, dict) or not isinstance(n.get("id"), str):
            raise ConfigError("a notice needs an id", field=f"notices[{i}]")
        groups = n.get("groups", ["all"])
        notices.append({"id": n["id"], "groups": list(groups), "titles": _names(n.get("titles"), f"notices[{i}].titles")})
    tags = tuple(_option(t, f"rating_tags[{i}]") for i, t in enumerate(doc.get("rating_tags", [])))
    version = doc.get("version", 1)
    if not isinstance(version, int) or isinstance(version, bool):
        raise ConfigError(f"expected an integer, got {version!r}", field="version")
    return Catalogue(version, services, tuple(notices), tags)


def restrict(catalogue: Catalogue, enabled_ids: list[str]) -> Catalogue:
    """The catalogue with only ``enabled_ids`` enabled: the desired config's ``services`` list
    (service ids) switches services on and off without sending the whole catalogue."""
    if not isinstance(enabled_ids, list | tuple) or any(not isinstance(i, str) for i in enabled_ids):
        raise ConfigError(f"expected a list of service ids, got {enabled_ids!r}", field="services")
    wanted = set(enabled_ids)
    services = tuple(dataclasses.replace(s, enabled=s.id in wanted) for s in catalogue.services)
    return dataclasses.replace(catalogue, services=services)


def load_default_document() -> dict[str, Any]:
    return json.loads(DEFAULT_PATH.read_text(encoding="utf-8"))


def load_default() -> Catalogue:
    return parse(load_default_document())
