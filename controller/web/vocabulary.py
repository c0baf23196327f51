"""The words that reach the console as data, and how each is shown in the operator's language.

Modes, kiosk states, device names and states, faults, required actions, event types, commands,
alarm rules, notice groups, identification kinds, feedback categories, roles and audit actions
arrive as ids. Each vocabulary here maps to a catalogue key prefix (``mode.normal``,
``action.load_paper``, ...), so a template says ``t.term("mode", k.mode)`` and never prints an
id. Service and rating-tag names come from the service catalogue itself, which carries all three
languages. The ids are the fleet contract's vocabularies (``contract.vocab``) and the service
catalogue's, so a word added there fails ``tests/console/test_every_page_translated.py`` until the
console's catalogues say it.
"""

from __future__ import annotations

from functools import cache
from typing import Any

from contract import updates, vocab
from contract.catalogue import IDENTIFICATION, load_default_document
from controller.rollout_reasons import CODES as ROLLOUT_REASONS
from controller.service_backend.operations import FEEDBACK_CATEGORIES, GROUPS

# kind -> the ids it may carry; the catalogue key of an id is f"{kind}.{id}".
VOCABULARIES: dict[str, tuple[str, ...]] = {
    "mode": vocab.MODES,
    "state": ("online", "offline", "stale", "unknown"),
    "reason": (*vocab.OFFLINE_REASONS, "stale"),
    "device": ("printer", "id_reader", "card_reader", "scanner", "supervisor"),
    "devstate": vocab.DEVICE_STATES,
    # The contract's faults, and the words v1 kiosks put in a device's detail instead.
    "fault": (*(f for f in vocab.FAULTS if f), "paper_low", "paper_ok"),
    "action": vocab.REQUIRED_ACTIONS,
    # The fields of a device's detail and the values each field takes (CEN/XFS-style).
    "field": ("paper", "cover", "connection", "media", "error", "fault", "door", "tamper", "temperature", "model",
              "device", "state", "mode", "previous", "version", "reason", "required_action", "boot_id", "versions",
              "relay", "open", "printed", "lines", "job", "warnings", "status", "config", "detail", "dropped",
              "from", "to", "uptime", "message", "changed", "on", "name", "path", "count", "note", "number", "site",
              "kiosk", "kiosk_id", "token", "groups", "group", "counter", "args", "via", "why", "source", "failed",
              "locked", "ref", "body", "diff", "services", "role", "kiosks", "region", "ticket", "wait_minutes",
              "category", "urgency", "rebooting_in", "restarting", "receipt", "ok", "reason_code", "delay", "agent",
              "job_id", "refused", "bytes_sent", "total_bytes", "seconds", "safe_mode", "hold_s",
              "enclosure_temperature", "max_events", "off_seconds", "mode_from", "expires_at", "issued_at",
              "reader", "rollout_action", "rollout_status", "wave", "waves", "manifest_sha256", "size"),
    "paper": (*vocab.PAPER, "ok"),  # "ok": a v1 kiosk's word for full
    "cover": vocab.COVER,
    "connection": vocab.CONNECTION,
    "media": vocab.MEDIA,
    "event": vocab.EVENT_TYPES,
    "command": vocab.COMMANDS,
    "group": GROUPS,
    "ident": IDENTIFICATION,
    "category": FEEDBACK_CATEGORIES,
    "urgency": ("urgent", "normal"),
    "role": ("admin", "operator", "viewer"),
    "diffop": ("add", "remove", "change"),
    "cfgstatus": vocab.CONFIG_STATUSES,
    # Why a roll-out or a kiosk of it is where it is (controller/rollout_reasons.py; ``kiosk`` and ``text``
    # carry what a kiosk or an older record said), and the ids of the kiosks' update reasons.
    "roreason": tuple(c for c in ROLLOUT_REASONS if c not in ("kiosk", "text")),
    "updatereason": updates.REASONS,
    # The status field of results: a config report's, a print job's.
    "outcome": ("applied", "rejected", "completed", "failed"),
    "queue.counter": ("general", "social", "civil"),
    # What an audit row is about: "kiosk:GD-1", "site:north", "alarm:12", "fleet", a user or token.
    "target": ("kiosk", "site", "alarm", "group", "request", "fleet", "notice"),
    # Who did it when it was not a person: the console's and the command line's own actors.
    "actor": ("console", "kioskctl"),
    # Audit log actions (``controller.audit_log``); the last four are kioskctl's queued action kinds.
    "auditaction": ("login", "logout", "login.failed", "login.locked", "user.add", "user.password", "user.role",
                    "user.unlock", "user.remove", "token.create", "token.revoke", "alarm.ack", "config.set",
                    "command.send", "command.result", "group.add", "group.remove", "site.set", "notice.publish",
                    "notice.withdraw", "request.reveal", "request.handled", "queue.call_next",
                    "enrolment_token.issue", "services.set", "ack", "config_set", "command", "group",
                    # The roll-out job's and kioskctl's (controller/rollout_job.py, ctl_rollouts.py).
                    "release_publish", "rollout_create", "rollout_wave", "rollout_approve", "rollout_pause",
                    "rollout_resume", "rollout_abort", "rollout_retry", "rollout_advance"),
}
# Kiosks of contract v1 send a required action as an English sentence; a mixed fleet keeps some of
# them for a while, so the console reads those sentences as the action ids they mean.
LEGACY_ACTIONS = {
    "load paper": "load_paper", "load a new paper roll": "load_paper", "load paper soon": "bring_paper",
    "paper low: bring a spare roll on the next visit": "bring_paper", "close the printer cover": "close_cover",
    "clear the cutter": "clear_jam", "clear the paper jam at the cutter, then close the cover": "clear_jam",
    "power-cycle the printer": "power_cycle_device", "check the printer": "check_device",
    "check the printer cable and power": "check_printer_power",
    "printer does not answer: check its power switch and cable": "check_printer_power",
    "check the supervisor board cable": "check_supervisor_cable", "inspect the enclosure": "inspect_enclosure",
}
# Which vocabulary a field's value comes from, where it has one (the value of "paper" is a paper state).
FIELD_KINDS = {"device": "device", "mode": "mode", "previous": "devstate", "from": "mode", "to": "mode",
               "detail": "fault", "error": "fault", "counter": "queue.counter", "groups": "group", "group": "group", "role": "role",
               "name": "command", "category": "category", "urgency": "urgency",
               "paper": "paper", "cover": "cover", "connection": "connection", "media": "media", "fault": "fault",
               "required_action": "action", "reason": "reason", "state": "devstate", "status": "outcome",
               "warnings": "fault", "rollout_action": "rollouts.action", "rollout_status": "rollouts.status"}
# The vocabulary of each alarm parameter the rules name (controller/alarm_rules.toml, ``params``).
ALARM_PARAM_KINDS = {"device": "device", "state": "state", "reason": "reason", "fault": "fault"}
# Envelope fields of a payload (contract version, ids, times): not what an operator reads.
ENVELOPE = frozenset({"v", "id", "seq", "ts", "type", "kiosk_id", "stats"})


@cache
def _catalogue() -> dict[str, Any]:
    doc = load_default_document()
    return {"service": {s["id"]: s["names"] for s in doc.get("services", [])},
            "tag": {t["id"]: t["names"] for t in doc.get("rating_tags", [])}}


def catalogue_name(kind: str, item_id: str, lang: str) -> str | None:
    """A service's or rating tag's name in ``lang`` from the service catalogue (``None``: unknown id)."""
    names = _catalogue()[kind].get(item_id)
    if names is None:
        return None
    return names.get(lang) or names.get("zh-CN") or item_id


def catalogue_ids(kind: str) -> tuple[str, ...]:
    return tuple(_catalogue()[kind])
