"""What the controller's pure handlers ask the store to record: one frozen dataclass per kind.

``controller/handlers.py`` decides and appends these to ``state.effects``; the controller's
worker (``controller/effect_writes.py``) hands each to the matching :class:`controller.store.Store`
method inside its one transaction per batch. Nothing here does I/O.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, ClassVar

from contract.payloads import Event
from controller import alarms


@dataclass(frozen=True)
class EventReceived:
    """A kiosk event, parsed by the contract, to store once by its id."""

    kind: ClassVar[str] = "events"  # what a refused row is counted as: dropped:<kind>
    kiosk_id: str
    event: Event
    received_at: float
    text: str = ""  # the payload as received and checked (``Parsed.text``): stored as it is


@dataclass(frozen=True)
class HistorySample:
    """A downsampled telemetry row for charts and reports."""

    kind: ClassVar[str] = "history"  # what a refused row is counted as: dropped:<kind>
    kiosk_id: str
    at: float
    telemetry: Mapping[str, Any]


@dataclass(frozen=True)
class DeviceReported:
    """A kiosk's device status, as the last ``devices/{name}`` message said."""

    kind: ClassVar[str] = "device"  # what a refused row is counted as: dropped:<kind>
    kiosk_id: str
    name: str
    status: Mapping[str, Any]
    at: float


@dataclass(frozen=True)
class AlarmChanged:
    """An alarm raised or cleared by the rules."""

    kind: ClassVar[str] = "alarm"  # what a refused row is counted as: dropped:<kind>
    change: alarms.Change
    at: float


@dataclass(frozen=True)
class CommandSent:
    kind: ClassVar[str] = "command"  # what a refused row is counted as: dropped:<kind>
    command_id: str
    sent_at: float


@dataclass(frozen=True)
class CommandFinished:
    """A command's final status (ok, error, rejected, expired, timed_out) with the kiosk's answer."""

    kind: ClassVar[str] = "command"  # what a refused row is counted as: dropped:<kind>
    command_id: str
    status: str
    finished_at: float
    error: str
    result: Any = None


Effect = EventReceived | HistorySample | DeviceReported | AlarmChanged | CommandSent | CommandFinished
