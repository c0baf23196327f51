"""Contactless card reader driver: NXP PN532 over UART (HSU).

Start-up wakes the PN532 (long preamble + SAMConfiguration), limits passive-activation retries
(so InListPassiveTarget answers "no card" instead of waiting forever) and reads the firmware
version. Every command is answered first by an ACK, then by the response frame; a damaged
response is asked for again with a NACK. ``read_uid`` serves community access cards,
``read_social_security(pin_provider)`` the social-security card (ISO 7816 APDUs through
InDataExchange).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable

from device_drivers import iso7816, pn532
from device_drivers.serial_link import AnswerDevice
from device_drivers.transport import wire_time
from foundation.backoff import Backoff
from foundation.errors import (
    DeviceError,
    DeviceTimeout,
    NothingPresented,
    RemoteProtocolError,
    TransportError,
)

log = logging.getLogger(__name__)


class NoContactlessCard(NothingPresented):
    """No card came into the field before the deadline."""


class Pn532Error(DeviceError):
    def __init__(self, status: int, during: str) -> None:
        self.status = status
        text = pn532.STATUS_TEXT.get(status & 0x3F, "error")
        super().__init__(f"card reader: {during}: {text} (status {status:02X})")


class CardReader(AnswerDevice):
    def __init__(
        self,
        url: str,
        baudrate: int = 115200,
        *,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
        backoff: Backoff | None = None,
        ack_timeout: float = 0.1,
        answer_timeout: float = 0.5,
    ) -> None:
        self.ack_timeout = ack_timeout
        self.answer_timeout = answer_timeout
        self.firmware: tuple[int, int, int, int] | None = None
        # ``replies`` holds PN532 frames and frame errors.
        super().__init__(url, baudrate, clock=clock, sleep=sleep, backoff=backoff, new_decoder=pn532.Pn532Decoder,
                         counters={"cards_read": 0, "communication_errors": 0, "nacks_sent": 0},
                         on_reconnect=self._resync)
        try:
            self.wake()
        except BaseException:
            # A reader that did not wake must let go of its port: the device manager's next claim
            # opens a new driver, and two reader threads on one port steal each other's frames.
            self.close()
            raise

    def _on_data(self, data: bytes) -> None:
        evs = self._decoder.feed(data)
        if evs:
            self.replies.put(*evs)

    def _resync(self) -> None:
        self.wake()

    # -- frames ----------------------------------------------------------------------------------
    def call(self, code: int, params: bytes = b"", *, timeout: float | None = None, preamble: bytes = b"") -> bytes:
        """Send a command, wait for ACK and the response; return the response data."""
        frame = preamble + pn532.command(code, params)

        def take_ack(events: list) -> pn532.Ack | None:
            while events:
                ev = events.pop(0)
                if isinstance(ev, pn532.Ack):
                    return ev
                if isinstance(ev, pn532.Nack | pn532.ErrorFrame | pn532.FrameError):
                    self.counters["communication_errors"] += 1
                    raise RemoteProtocolError(f"PN532 did not accept command {code:02X} ({type(ev).__name__})")
            return None

        def take_answer(events: list) -> pn532.Frame | pn532.FrameError | None:
            while events:
                ev = events.pop(0)
                if isinstance(ev, pn532.Frame) and ev.tfi == pn532.PN532_TO_HOST:
                    if ev.code == code + 1:
                        return ev  # else a late answer to an earlier command that timed out
                elif isinstance(ev, pn532.ErrorFrame):
                    raise RemoteProtocolError(f"PN532 reported a syntax error for command {code:02X}")
                elif isinstance(ev, pn532.FrameError):
                    return ev
            return None

        with self.replies.lock:
            self.replies.exchange(lambda: self.link.write(frame), take_ack,
                                  self.ack_timeout + wire_time(len(frame) + 6, self.baudrate),
                                  f"PN532 on {self.url} did not acknowledge command {code:02X}; state unknown")
            nacks = 0
            while True:
                ev = self.replies.wait_for(take_answer, timeout or self.answer_timeout,
                                           f"PN532 on {self.url} did not answer command {code:02X}; state unknown")
                if isinstance(ev, pn532.Frame):
                    return ev.data
                self.counters["communication_errors"] += 1
                if nacks >= 2:
                    raise RemoteProtocolError(f"PN532 answer to {code:02X} damaged three times")
                nacks += 1
                self.counters["nacks_sent"] += 1
                self.replies.clear()
                self.link.write(pn532.NACK)  # asks the PN532 to send its last answer again

    # -- operations ------------------------------------------------------------------------------
    def wake(self) -> tuple[int, int, int, int]:
        """Wake the PN532 (HSU), normal SAM mode, finite passive-activation retries, firmware."""
        self.call(pn532.SAM_CONFIGURATION, bytes([0x01, 0x14, 0x01]), preamble=pn532.WAKEUP)
        # CfgItem 5: MxRtyATR, MxRtyPSL, MxRtyPassiveActivation (0xFF would wait forever).
        self.call(pn532.RF_CONFIGURATION, bytes([0x05, 0xFF, 0x01, 0x02]))
        fw = self.call(pn532.GET_FIRMWARE_VERSION)
        if len(fw) != 4:
            raise RemoteProtocolError("PN532 firmware version answer is not 4 bytes")
        self.firmware = (fw[0], fw[1], fw[2], fw[3])
        return self.firmware

    def find_target(self, timeout: float = 5.0, poll_interval: float = 0.05) -> pn532.Target:
        deadline = self.clock() + timeout
        last: Exception | None = None
        while self.clock() < deadline:
            try:
                self.link.wait_connected(max(0.0, min(1.0, deadline - self.clock())))
                targets = pn532.parse_targets(self.call(pn532.IN_LIST_PASSIVE_TARGET, b"\x01\x00"))
            except (TransportError, DeviceTimeout, RemoteProtocolError) as exc:
                last = exc
                self.sleep(poll_interval)
                continue
            if targets:
                return targets[0]
            last = None
            self.sleep(poll_interval)
        if last is not None:
            raise last
        raise NoContactlessCard(f"no card in the field within {timeout:g} s")

    def card_present(self) -> bool:
        """Whether a card is in the field, without reading it (one passive-target poll)."""
        self.link.wait_connected(1.0)
        targets = pn532.parse_targets(self.call(pn532.IN_LIST_PASSIVE_TARGET, b"\x01\x00"))
        for t in targets:
            self._release(t)
        return bool(targets)

    def read_uid(self, timeout: float = 5.0) -> str:
        """UID of a community access card (or any ISO 14443A card), as upper-case hex."""
        t = self.find_target(timeout)
        self._release(t)
        self.counters["cards_read"] += 1
        return t.uid.hex().upper()

    def transceive(self, tg: int, apdu: bytes, timeout: float = 1.0) -> bytes:
        data = self.call(pn532.IN_DATA_EXCHANGE, bytes([tg]) + apdu, timeout=timeout)
        if not data:
            raise RemoteProtocolError("empty InDataExchange answer")
        if data[0] & 0x3F:
            raise Pn532Error(data[0], "data exchange")
        return data[1:]

    def read_social_security(self, pin_provider: Callable[[], str | None] | None = None,
                             timeout: float = 5.0) -> iso7816.SocialSecurityData:
        """Read the basic data of a social-security card. The PIN, if the card asks for one,
        comes from ``pin_provider`` (the backend seam); it is never stored here."""
        t = self.find_target(timeout)
        if not t.iso_dep:
            self._release(t)
            raise DeviceError("the card in the field is not a social-security card (no ISO 14443-4)")
        try:
            data = iso7816.read_social_security(lambda a: self.transceive(t.tg, a), pin_provider)
        finally:
            self._release(t)
        self.counters["cards_read"] += 1
        return data

    def _release(self, t: pn532.Target) -> None:
        try:
            self.call(pn532.IN_RELEASE, bytes([t.tg]))
        except (DeviceTimeout, RemoteProtocolError, TransportError):
            pass  # the next InListPassiveTarget starts afresh anyway
