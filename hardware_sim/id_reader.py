"""Simulated resident ID card reader (SAM_V module): answers SAM status, find, select and
read text+photo frames for a placed fictitious card, with a configurable card latency.

``{"cmd": "hidden_damage", "reads": N}`` flips bit 0 of the first two bytes of the holder's name
in the next N read answers: damage the frame's XOR check byte cannot see."""

from __future__ import annotations

from typing import Any

from device_drivers import samv
from hardware_sim import identities
from hardware_sim.pty_device import SimControlError, SimDevice


class IdReaderSim(SimDevice):
    name = "id-reader"

    def __init__(self, out_dir=None) -> None:
        super().__init__(out_dir)
        self.decoder = samv.SamvDecoder(from_host=True)
        self.card: tuple[bytes, bytes] | None = None
        self.profile: str | None = None
        self.selected = False
        self.found = False
        self.card_latency = 0.02  # seconds the RF exchange with the card takes for a read
        self.sam_ok = True
        self.frames = 0
        self.hidden_damage = 0  # read answers still to damage past the check byte
        self._queue: list[tuple[float, bytes]] = []

    def on_bytes(self, data: bytes, now: float) -> bytes:
        out = bytearray()
        for ev in self.decoder.feed(data):
            if isinstance(ev, samv.FrameError):
                if ev.reason == "bad checksum":
                    out += samv.response(0x10)
                continue
            if not isinstance(ev, samv.Command):
                continue  # the reader's side of the codec yields commands only
            self.frames += 1
            answer, delay = self._answer(ev)
            if delay:
                self._queue.append((now + delay, answer))
            else:
                out += answer
        return bytes(out)

    def _answer(self, c: samv.Command) -> tuple[bytes, float]:
        key = (c.cmd, c.para)
        if key == samv.SAM_STATUS or key == samv.RESET_SAM:
            return samv.response(0x90 if self.sam_ok else 0x60), 0.0
        if key == samv.READ_SAM_ID:
            return samv.response(0x90, bytes(16)), 0.0
        if not self.sam_ok:
            return samv.response(0x60), 0.0
        if key == samv.FIND_CARD:
            self.found = self.card is not None
            return (samv.response(0x9F, bytes(4)) if self.found else samv.response(0x80)), 0.0
        if key == samv.SELECT_CARD:
            if not self.found or self.card is None:
                return samv.response(0x81), 0.0
            self.selected = True
            return samv.response(0x90, bytes(8)), 0.0
        if key in (samv.READ_TEXT_PHOTO, samv.READ_TEXT_PHOTO_FP):
            if not self.selected or self.card is None:
                return samv.response(0x41), 0.0
            self.selected = self.found = False  # a card is read once per find/select
            text, photo = self.card
            if self.hidden_damage > 0 and key == samv.READ_TEXT_PHOTO:
                self.hidden_damage -= 1
                text = bytes([text[0] ^ 1, text[1] ^ 1]) + text[2:]  # same bit column: the XOR is unchanged
            head = bytes([len(text) >> 8, len(text) & 0xFF, len(photo) >> 8, len(photo) & 0xFF])
            if key == samv.READ_TEXT_PHOTO_FP:
                return samv.response(0x91), self.card_latency  # this card has no fingerprint data
            return samv.response(0x90, head + text + photo), self.card_latency
        return samv.response(0x21), 0.0

    def tick(self, now: float) -> bytes:
        out = bytearray()
        while self._queue and self._queue[0][0] <= now:
            out += self._queue.pop(0)[1]
        return bytes(out)

    def next_wakeup(self, now: float) -> float:
        if self._queue:
            return max(0.0, self._queue[0][0] - now)
        return 0.05

    def control(self, cmd: dict[str, Any], now: float) -> dict[str, Any] | None:
        name = cmd["cmd"]
        if name == "place_card":
            profile = cmd.get("profile", "resident-1")
            try:
                self.card = identities.card(profile)
            except KeyError as exc:
                raise SimControlError(str(exc.args[0])) from None
            self.profile = profile
            self.found = self.selected = False
            flag = identities.PROFILES[profile]["flag"] if profile in identities.PROFILES else "resident"
            return {"profile": profile, "type": flag}
        if name == "remove_card":
            self.card = self.profile = None
            self.found = self.selected = False
            return {}
        if name == "card_latency":
            self.card_latency = float(cmd.get("seconds", 0.02))
            return {"seconds": self.card_latency}
        if name == "hidden_damage":
            reads = cmd.get("reads", 1)
            if not isinstance(reads, int) or isinstance(reads, bool) or reads < 0:
                raise SimControlError(f"hidden_damage needs a count of reads >= 0, got {reads!r}")
            self.hidden_damage = reads
            return {"reads": reads}
        if name == "sam":
            self.sam_ok = bool(cmd.get("ok", True))
            return {"sam_ok": self.sam_ok}
        if name == "status":
            return {"card": self.profile, "frames": self.frames, "card_latency": self.card_latency}
        return super().control(cmd, now)
