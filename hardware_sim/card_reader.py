"""Simulated PN532 contactless reader with simulated cards: a social-security card answering
ISO 7816 APDUs (DDF1 by name, EF05/EF06 records, optional PIN) and UID-only access cards."""

from __future__ import annotations

from typing import Any

from device_drivers import iso7816, pn532
from hardware_sim import identities
from hardware_sim.pty_device import SimControlError, SimDevice

SW_OK = b"\x90\x00"


def _tlv(tag: int, value: bytes) -> bytes:
    return bytes([tag, len(value)]) + value


class SocialSecurityCardSim:
    """The card side of the social-security application; fictitious holder data."""

    def __init__(self, pin: str = "123456", pin_required: bool = True, tries: int = 3) -> None:
        holder = identities.PROFILES["resident-1"]["values"]
        self.records = {
            0x01: bytes.fromhex("440100D15600000500000000000000FF"[:32]),
            0x02: b"3", 0x03: b"3.00", 0x04: bytes.fromhex("440100000000"),
            0x05: bytes.fromhex("20200101"), 0x06: bytes.fromhex("20300101"),
            0x07: b"TEST00001",
            0x08: holder["id_number"].encode(), 0x09: holder["name"].encode("gbk").ljust(30, b"\x00"),
            0x0A: holder["sex"].encode(), 0x0B: bytes.fromhex(holder["nation"]),
            0x0C: bytes.fromhex("440106"), 0x0D: bytes.fromhex(holder["birth"]),
        }
        self.pin = pin
        self.pin_required = pin_required
        self.tries = tries
        self.reset()

    def reset(self) -> None:
        self.app = False
        self.ef: bytes | None = None
        self.verified = False

    def apdu(self, cmd: bytes) -> bytes:
        if len(cmd) < 4:
            return b"\x67\x00"
        cla, ins, p1, p2 = cmd[:4]
        lc = cmd[4] if len(cmd) > 5 else 0
        data = cmd[5 : 5 + lc]
        if ins == 0xA4 and p1 == 0x04:
            self.app = data == iso7816.SSC_DDF1_AID
            self.ef = None
            return SW_OK if self.app else b"\x6a\x82"
        if ins == 0xA4 and p1 == 0x02:
            if not self.app or data not in (iso7816.EF05, iso7816.EF06):
                return b"\x6a\x82"
            self.ef = data
            return SW_OK
        if ins == 0x20:
            if self.tries <= 0:
                return b"\x69\x83"
            if data.hex().upper().rstrip("F") == self.pin:
                self.verified, self.tries = True, 3
                return SW_OK
            self.tries -= 1
            return bytes([0x63, 0xC0 | self.tries]) if self.tries else b"\x69\x83"
        if ins == 0xB2 and p2 == 0x04:
            files = {iso7816.EF05: range(0x01, 0x08), iso7816.EF06: range(0x08, 0x0E)}
            allowed = files.get(self.ef) if self.ef is not None else None
            if allowed is None:
                return b"\x69\x86"
            if p1 not in allowed:
                return b"\x6a\x83"
            if self.ef == iso7816.EF06 and self.pin_required and not self.verified:
                return b"\x69\x82"
            return _tlv(p1, self.records[p1]) + SW_OK
        return b"\x6d\x00"


class CardReaderSim(SimDevice):
    name = "card-reader"

    def __init__(self, out_dir=None) -> None:
        super().__init__(out_dir)
        self.decoder = pn532.Pn532Decoder()
        self.card: dict[str, Any] | None = None
        self.ssc: SocialSecurityCardSim | None = None
        self.active = False
        self.last_answer = b""
        self.frames = 0

    def on_bytes(self, data: bytes, now: float) -> bytes:
        out = bytearray()
        for ev in self.decoder.feed(data):
            if isinstance(ev, pn532.Nack):
                out += self.last_answer
            elif isinstance(ev, pn532.FrameError):
                out += pn532.ERROR_FRAME
            elif isinstance(ev, pn532.Frame) and ev.tfi == pn532.HOST_TO_PN532:
                self.frames += 1
                self.last_answer = self._answer(ev.code, ev.data)
                out += pn532.ACK + self.last_answer
        return bytes(out)

    def _answer(self, code: int, data: bytes) -> bytes:
        if code == pn532.GET_FIRMWARE_VERSION:
            return pn532.response(code, bytes([0x32, 0x01, 0x06, 0x07]))
        if code in (pn532.SAM_CONFIGURATION, pn532.RF_CONFIGURATION):
            return pn532.response(code)
        if code == pn532.IN_LIST_PASSIVE_TARGET:
            if self.card is None:
                return pn532.response(code, b"\x00")
            self.active = True
            if self.ssc:
                self.ssc.reset()
            c = self.card
            return pn532.response(code, b"\x01" + pn532.encode_target(1, c["sens_res"], c["sel_res"], c["uid"],
                                                                       c.get("ats", b"")))
        if code == pn532.IN_DATA_EXCHANGE:
            if self.card is None or not self.active:
                return pn532.response(code, b"\x2b" if self.card is None else b"\x27")
            if self.ssc is None:
                return pn532.response(code, b"\x27")  # a MIFARE-only card does not speak APDUs
            return pn532.response(code, b"\x00" + self.ssc.apdu(data[1:]))
        if code == pn532.IN_RELEASE:
            self.active = False
            return pn532.response(code, b"\x00")
        return pn532.ERROR_FRAME  # a command this model does not know

    def control(self, cmd: dict[str, Any], now: float) -> dict[str, Any] | None:
        name = cmd["cmd"]
        if name == "place_card":
            kind = cmd.get("kind", "social_security")
            if kind == "social_security":
                self.ssc = SocialSecurityCardSim(str(cmd.get("pin", "123456")), bool(cmd.get("pin_required", True)))
                self.card = {"sens_res": b"\x00\x04", "sel_res": 0x20, "uid": bytes.fromhex("08A1B2C3"),
                             "ats": bytes.fromhex("0578807002")}
            elif kind == "uid":
                uid = bytes.fromhex(str(cmd.get("uid", "04A2B3C4D5E680")))
                if len(uid) not in (4, 7, 10):
                    raise SimControlError("uid must be 4, 7 or 10 bytes of hex")
                self.ssc = None
                self.card = {"sens_res": b"\x00\x44" if len(uid) == 7 else b"\x00\x04", "sel_res": 0x08, "uid": uid}
            else:
                raise SimControlError(f"kind must be social_security or uid, got {kind!r}")
            self.active = False
            return {"kind": kind, "uid": self.card["uid"].hex().upper()}
        if name == "remove_card":
            self.card = self.ssc = None
            self.active = False
            return {}
        if name == "status":
            return {"card": None if self.card is None else self.card["uid"].hex().upper(), "frames": self.frames,
                    "pin_tries": self.ssc.tries if self.ssc else None}
        return super().control(cmd, now)
