"""The words that reach the console as data, and how each is shown in the operator's language.

Modes, kiosk states, device names and states, faults, required actions, event types, commands,
alarm rules, notice groups, identification kinds, feedback categories, roles and audit actions
arrive as ids. Each vocabulary here maps to a catalogue key prefix (``mode.normal``,
``action.load_paper``, ...), so a template says ``t.term("mode", k.mode)`` and never prints an
id. Service and rating-tag names come from the service catalogue itself, which carries all three
languages. The ids follow the fleet contract's vocabularies (``contract.vocab`` once it lands;
``contract.topics.MODES`` and the catalogue today); ``tests/console/test_every_page_translated.py``
fails on any id that reaches a page untranslated.
"""

from __future__ import annotations

from functools import cache
from typing import Any

from contract.catalogue import IDENTIFICATION, load_default_document
from contract.topics import MODES
from controller.service_backend.operations import FEEDBACK_CATEGORIES, GROUPS

# kind -> the ids it may carry; the catalogue key of an id is f"{kind}.{id}".
VOCABULARIES: dict[str, tuple[str, ...]] = {
    "mode": MODES,
    "state": ("online", "offline", "stale", "unknown"),
    "reason": ("lwt", "shutdown", "stale"),
    "device": ("printer", "id_reader", "card_reader", "scanner", "supervisor"),
    "devstate": ("closed", "idle", "busy", "error", "unknown"),
    "fault": ("paper_out", "paper_low", "paper_jammed", "paper_ok", "cover_open", "cutter_error", "disconnected",
              "not_answering", "offline", "unrecoverable_error", "sam", "tamper", "unknown"),
    "action": ("check_connection", "check_printer_power", "close_cover", "load_paper", "clear_jam", "bring_paper",
               "replace_id_reader", "power_cycle_device", "check_supervisor_cable", "inspect_enclosure",
               "check_device"),
    # The fields of a device's detail and the values each field takes (CEN/XFS-style).
    "field": ("paper", "cover", "connection", "media", "error", "fault", "door", "tamper", "temperature", "model",
              "device", "state", "mode", "previous", "version", "reason", "required_action", "boot_id", "versions",
              "relay", "open", "printed", "lines", "job", "warnings", "status", "config", "detail", "dropped",
              "from", "to", "uptime", "message", "changed", "on", "name", "path", "count"),
    "paper": ("full", "ok", "low", "out", "jammed", "unknown"),
    "cover": ("open", "closed", "unknown"),
    "connection": ("connected", "disconnected"),
    "media": ("present", "not_present", "unknown"),
    "event": ("boot", "device_state", "mode_changed", "config_applied", "config_rejected", "device_power_cycled",
              "journal_overflow", "host_power_cycled", "tamper", "door", "relay"),
    "command": ("reboot", "restart_app", "set_mode", "test_print", "power_cycle", "collect_diagnostics",
                "reload_config"),
    "group": GROUPS,
    "ident": IDENTIFICATION,
    "category": FEEDBACK_CATEGORIES,
    "urgency": ("urgent", "normal"),
    "role": ("admin", "operator", "viewer"),
    "diffop": ("add", "remove", "change"),
    "cfgstatus": ("applied", "rejected"),
    # Audit log actions (``controller.audit_log``); the last four are kioskctl's queued action kinds.
    "auditaction": ("login", "logout", "login.failed", "login.locked", "user.add", "user.password", "user.role",
                    "user.unlock", "user.remove", "token.create", "token.revoke", "alarm.ack", "config.set",
                    "command.send", "command.result", "group.add", "group.remove", "site.set", "notice.publish",
                    "notice.withdraw", "request.reveal", "request.handled", "queue.call_next",
                    "enrolment_token.issue", "services.set", "ack", "config_set", "command", "group"),
}
# Which vocabulary a field's value comes from, where it has one (the value of "paper" is a paper state).
FIELD_KINDS = {"device": "device", "mode": "mode", "previous": "mode", "from": "mode", "to": "mode",
               "paper": "paper", "cover": "cover", "connection": "connection", "media": "media", "fault": "fault",
               "required_action": "action", "reason": "reason", "state": "devstate", "status": "cfgstatus"}
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
