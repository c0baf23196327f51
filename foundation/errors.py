"""The project's one exception tree.

Every part raises subclasses of :class:`KioskError`, so a supervisor loop can catch exactly
what the project means to recover from and let real bugs surface.
"""

from __future__ import annotations


class KioskError(Exception):
    """Root of every error the project raises on purpose."""


class ConfigError(KioskError):
    """A configuration file or value is wrong; ``field`` names what was wrong."""

    def __init__(self, message: str, *, field: str | None = None, path: str | None = None) -> None:
        self.field = field
        self.path = path
        where = ""
        if path:
            where += f"{path}: "
        if field:
            where += f"{field}: "
        super().__init__(where + message)


class ProtocolError(KioskError):
    """Bytes or messages on a wire do not follow the protocol."""


class LocalProtocolError(ProtocolError):
    """We were asked to send something the protocol does not allow."""


class RemoteProtocolError(ProtocolError):
    """The peer sent something the protocol does not allow."""


class TransportError(KioskError):
    """A port, socket or broker connection failed or is not there."""


class DeviceError(KioskError):
    """A device answered, but reports a condition that stops the operation."""


class DeviceTimeout(DeviceError):
    """A device did not answer in time; its state is unknown, never assumed fine."""


class NothingPresented(DeviceTimeout):
    """The reader works, but no card or code was presented before the deadline: wait or ask again."""


class BrokerUnavailable(TransportError):
    """The MQTT broker could not be reached."""


class CommandRejected(KioskError):
    """A fleet command failed verification (signature, expiry, replay, arguments)."""

    def __init__(self, reason: str, message: str) -> None:
        self.reason = reason
        super().__init__(f"{reason}: {message}")


class ProvisioningError(KioskError):
    """A provisioning step (fleet CA, enrolment, flashing, self-test) failed; the message says what to check."""


class EnrolmentRefused(ProvisioningError):
    """The controller refused an enrolment; ``reason`` is a stable code (token_used, token_expired, ...)."""

    def __init__(self, reason: str, message: str) -> None:
        self.reason = reason
        super().__init__(f"{reason}: {message}")
