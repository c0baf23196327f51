"""The words of the fleet link: every closed vocabulary a payload may carry, listed once.

Producers and parsers on both sides read these tuples; translation catalogues key their labels
by the same ids, so a new word is added here first.
"""

from __future__ import annotations

# Kiosk modes. ``safe`` is entered by the kiosk itself (repeated short boots, ESPHome-style safe
# mode) and reported in its status; an operator cannot command it, only leave it with ``normal``.
MODES = ("normal", "safe", "maintenance", "out_of_service")
COMMANDABLE_MODES = ("normal", "maintenance", "out_of_service")

PRESENCE = ("online", "offline")
OFFLINE_REASONS = ("lwt", "shutdown")

# Device status (UnifiedPOS life cycle plus ``unknown`` for a device that does not answer).
DEVICE_STATES = ("closed", "idle", "busy", "error", "unknown")
# CEN/XFS printer paper and cover states.
PAPER = ("full", "low", "out", "jammed", "unknown")
COVER = ("open", "closed", "unknown")
CONNECTION = ("connected", "disconnected")
MEDIA = ("present", "not_present", "unknown")
# The one most specific fault of a device, or "" when it has none; alarm rules key on these.
FAULTS = ("", "paper_out", "paper_jammed", "cover_open", "cutter_error", "disconnected", "not_answering",
          "offline", "unrecoverable_error", "sam", "tamper", "unknown")
# What a technician should do, as ids the kiosk and the console translate (``None``: nothing).
REQUIRED_ACTIONS = ("check_connection", "check_printer_power", "close_cover", "load_paper", "clear_jam",
                    "bring_paper", "replace_id_reader", "power_cycle_device", "check_supervisor_cable",
                    "inspect_enclosure", "check_device")

COMMANDS = ("reboot", "restart_app", "set_mode", "test_print", "power_cycle", "collect_diagnostics",
            "reload_config", "update", "update_rollback")
RESULT_STATUSES = ("ok", "error", "rejected", "expired")
REJECT_REASONS = ("malformed", "wrong_kiosk", "no_key", "bad_signature", "expired", "replayed",
                  "unknown_command", "bad_arguments", "unsupported_version")

CONFIG_STATUSES = ("applied", "rejected")

EVENT_TYPES = ("boot", "device_state", "mode_changed", "config_applied", "config_rejected", "device_power_cycled",
               "journal_overflow", "host_power_cycled", "tamper", "door", "relay", "self_test",
               "card_left_behind",  # the kiosk app: a card still on a reader a minute after its session
               "update_rolled_back", "update_failed", "update_deferred")  # the agent's updates (issue 15)

SERVICE_ERRORS = ("bad_request", "unknown_op", "service_failed", "backend_unavailable")
