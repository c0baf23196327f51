"""Resident ID card reader driver (SAM_V frames over serial).

``read_card(timeout)`` polls find -> select -> read, maps reader status codes to clear errors,
retries transient faults (noise, a card moved, an unplugged cable that comes back) until its
deadline, and returns an :class:`~device_drivers.samv.Identity` that lives in memory only.
Call :meth:`IdCardReader.wipe` (or ``identity.wipe()``) at the end of the resident's session.

SAM_V protects a frame with one XOR byte, which two flipped bits in the same bit column pass
unseen: on a noisy line about 3 in 100 reads of a 1.3 kB answer at one flipped bit per 1,000
bytes. A read is therefore taken on its own only while the line has proven clean (a confirmed
read, no damaged frame for ``trust_after`` seconds and no reconnect since); otherwise the card is
read again until two answers agree. On a clean line this costs one extra read after start-up.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable

from device_drivers import samv
from device_drivers.serial_link import AnswerDevice
from device_drivers.transport import wire_time
from foundation.backoff import Backoff
from foundation.errors import DeviceTimeout, NothingPresented, RemoteProtocolError, TransportError

log = logging.getLogger(__name__)


class NoCard(NothingPresented):
    """No card was presented before the deadline."""


class IdCardReader(AnswerDevice):
    def __init__(
        self,
        url: str,
        baudrate: int = 115200,
        *,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
        backoff: Backoff | None = None,
        answer_timeout: float = 0.5,
        card_timeout: float = 2.0,
        trust_after: float = 600.0,
    ) -> None:
        self.answer_timeout = answer_timeout
        self.trust_after = trust_after
        self._damaged_at: float | None = None  # clock time of the last damaged frame
        self._trusted_since: tuple[float, int] | None = None  # (clock, link reconnects) of the last confirmed read
        self.card_timeout = card_timeout  # the card's RF exchange for 30 01 can take ~1 s on real readers
        self._last: samv.Identity | None = None
        # ``replies`` holds answers, and DecodeErrors for bad checksums.
        super().__init__(url, baudrate, clock=clock, sleep=sleep, backoff=backoff, new_decoder=samv.SamvDecoder,
                         counters={"cards_read": 0, "communication_errors": 0, "read_failures": 0})

    def close(self) -> None:
        self.wipe()
        super().close()

    # -- frames ----------------------------------------------------------------------------------
    def _on_data(self, data: bytes) -> None:
        for ev in self._decoder.feed(data):
            with self.replies.cond:
                if not isinstance(ev, samv.Response):
                    self.counters["communication_errors"] += 1
                    self._damaged_at = self.clock()
                    if ev.reason != "bad checksum":
                        continue
                self.replies.put(ev)

    @staticmethod
    def _plausible(cmd: tuple[int, int], r: samv.Response) -> bool:
        """SAM_V answers do not name their command: an answer whose shape does not fit the
        command is a late answer to an earlier one and is dropped."""
        if r.status not in (samv.OK, samv.CARD_FOUND):
            return not r.data  # error answers carry no data
        if cmd == samv.FIND_CARD:
            return r.status == samv.CARD_FOUND and len(r.data) == 4
        if cmd == samv.SELECT_CARD:
            return r.status == samv.OK and len(r.data) == 8
        if cmd in (samv.READ_TEXT_PHOTO, samv.READ_TEXT_PHOTO_FP):
            return r.status == samv.OK and len(r.data) >= 4 + 256
        if cmd == samv.READ_SAM_ID:
            return r.status == samv.OK and len(r.data) == 16
        return r.status == samv.OK and not r.data

    def request(self, cmd: tuple[int, int], *, timeout: float | None = None) -> samv.Response:
        """Send one command and wait for its answer (DeviceTimeout if none)."""
        frame = samv.command(cmd)
        limit = (timeout or self.answer_timeout) + wire_time(len(frame), self.baudrate)

        def take(items: list) -> samv.Response | None:
            damaged = False
            while items:
                r = items.pop(0)
                if not isinstance(r, samv.Response):
                    damaged = True
                elif self._plausible(cmd, r):
                    return r
                else:
                    self.counters["communication_errors"] += 1
            if damaged:
                # The answer arrived damaged: no need to wait for a timeout to know.
                raise RemoteProtocolError(f"ID card reader on {self.url}: answer failed its checksum")
            return None

        # The answer does not name its command, hence ``settle``.
        return self.replies.exchange(lambda: self.link.write(frame), take, limit,
                                     f"ID card reader on {self.url} did not answer command "
                                     f"{cmd[0]:02X} {cmd[1]:02X}; state unknown", settle=min(limit, 0.5))

    # -- operations ------------------------------------------------------------------------------
    def sam_status(self) -> None:
        """Raise unless the SAM module reports itself healthy."""
        r = self.request(samv.SAM_STATUS)
        if r.status != samv.OK:
            raise samv.SamvStatusError(r.status, "SAM status")

    def read_card(self, timeout: float = 5.0, *, poll_interval: float = 0.1) -> samv.Identity:
        """Wait up to ``timeout`` s for a card and read it. Raises :class:`NoCard` if none came,
        :class:`~device_drivers.samv.SamvStatusError` for a definite reader error, or the last
        transport error if the reader stayed unreachable."""
        deadline = self.clock() + timeout
        last: Exception | None = None
        first: tuple[bytes, bytes] | None = None  # a read waiting for a second one that agrees
        while True:
            left = deadline - self.clock()
            if left <= 0:
                if first is not None:
                    raise RemoteProtocolError(f"ID card reader on {self.url}: the card's reads did not agree "
                                              f"within {timeout:g} s (a noisy line)")
                if isinstance(last, TransportError | DeviceTimeout | RemoteProtocolError):
                    raise last
                raise NoCard(f"no ID card presented within {timeout:g} s")
            try:
                self.link.wait_connected(min(left, 1.0))
                raw = self._try_once()
            except (TransportError, DeviceTimeout, RemoteProtocolError) as exc:
                last = exc
                self.sleep(min(poll_interval, max(0.0, deadline - self.clock())))
                continue
            if raw is None:
                last, first = None, None
                self.sleep(min(poll_interval, max(0.0, deadline - self.clock())))
                continue
            if raw != first and not self._line_trusted():
                if first is not None:
                    self.counters["communication_errors"] += 1  # the check byte let a damaged answer through
                else:  # the agreeing read may finish after the deadline the first one met
                    deadline = max(deadline, self.clock() + self.card_timeout + 1.0)
                first = raw
                continue
            if raw == first:
                self._trusted_since = (self.clock(), self.link.reconnects)
            ident = samv.decode_text(*raw)
            self.counters["cards_read"] += 1
            self.wipe()
            self._last = ident
            log.info("ID card read", extra={"fields": ident.masked()})
            return ident

    def card_present(self) -> bool:
        """Whether a card lies on the reader, without reading it (one find-card request): the kiosk
        asks this to tell a card left by the previous resident from one placed for this session."""
        self.link.wait_connected(1.0)
        r = self.request(samv.FIND_CARD)
        if r.status == 0x80:
            return False
        if r.status != samv.CARD_FOUND:
            raise samv.SamvStatusError(r.status, "find card")
        return True

    def _line_trusted(self) -> bool:
        """Whether one read may stand alone: a read was confirmed on this connection, and no frame
        has arrived damaged for ``trust_after`` seconds."""
        if self._trusted_since is None or self._trusted_since[1] != self.link.reconnects:
            return False
        damaged = self._damaged_at
        return damaged is None or self.clock() - damaged >= self.trust_after

    def _try_once(self) -> tuple[bytes, bytes] | None:
        """One find -> select -> read: the card's text block and photo, or None if no card was there."""
        r = self.request(samv.FIND_CARD)
        if r.status == 0x80:
            return None
        if r.status == 0x10:  # our frame arrived damaged: poll again
            raise RemoteProtocolError("reader reported a checksum error on our frame")
        if r.status != samv.CARD_FOUND:
            raise samv.SamvStatusError(r.status, "find card")
        r = self.request(samv.SELECT_CARD)
        if r.status == 0x81:
            return None  # card left the field between find and select
        if r.status != samv.OK:
            raise samv.SamvStatusError(r.status, "select card")
        r = self.request(samv.READ_TEXT_PHOTO, timeout=self.card_timeout)
        if r.status == 0x41:
            self.counters["read_failures"] += 1
            return None
        if r.status != samv.OK:
            raise samv.SamvStatusError(r.status, "read card")
        text, photo, _ = samv.split_read_answer(r.data)  # lengths that do not fit: RemoteProtocolError
        return text, photo

    def wipe(self) -> None:
        """Forget the last identity read (end of the resident's session)."""
        if self._last is not None:
            self._last.wipe()
            self._last = None

