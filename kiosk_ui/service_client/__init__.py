"""How the kiosk reaches the resident-service backend.

:class:`ServiceBackend` is the interface (a real government backend can be put behind it);
:mod:`.mqtt` speaks ``svc/request``/``svc/response`` to the controller; :mod:`.offline` issues
local queue tickets while the controller is unreachable.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Protocol

from foundation.errors import KioskError, TransportError


class ServiceUnavailable(TransportError):
    """The backend cannot be reached now (controller offline, broker down, no answer in time)."""


class ServiceRefused(KioskError):
    """The backend answered with a refusal; ``code`` is translated for the resident."""

    def __init__(self, code: str, message: str) -> None:
        self.code = code
        super().__init__(f"{code}: {message}")


class ServiceBackend(Protocol):
    def call(self, service: str, op: str, args: dict[str, Any], timeout: float = 8.0) -> dict[str, Any]:
        """The response data, or raise ServiceUnavailable / ServiceRefused."""
        ...

    @property
    def online(self) -> bool: ...

    def watch_presence(self, listener: Callable[[bool], None]) -> None:
        """Call ``listener`` with True/False whenever the backend becomes reachable or unreachable."""
        ...
