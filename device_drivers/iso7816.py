"""ISO 7816-4 APDUs and the basic-data read of the Chinese social-security card, sans-IO.

The card read takes ``transceive(apdu) -> response`` (any transport: a PN532 InDataExchange, a
contact reader) and a ``pin_provider`` seam. The card's application is selected by name (DDF1
``sx1.sh.社会保障``); EF05 holds the card data (records 01-07: identification code, type, version,
issuing organisation, issue and expiry dates, card number), EF06 the holder's basic data
(records 08-0D: social-security number, name, sex, nation, birthplace, birth date). Records are
TLV: tag (= record number), length, value. Where a card requires PIN verification, the PIN
comes from ``pin_provider()`` (the resident types it in, or the service backend provides it);
none is hard-coded here.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, field

from foundation.errors import DeviceError, LocalProtocolError, RemoteProtocolError
from foundation.logs import mask_id_number, mask_name

log = logging.getLogger(__name__)

# "sx1.sh.社会保障" with the Chinese in GBK: the social-security application (DDF1) name.
SSC_DDF1_AID = b"sx1.sh." + "社会保障".encode("gbk")
EF05 = b"\xef\x05"
EF06 = b"\xef\x06"

SW_TEXT = {
    0x9000: "success",
    0x6281: "returned data may be corrupted",
    0x6700: "wrong length",
    0x6981: "command incompatible with the file structure",
    0x6982: "security status not satisfied (PIN needed)",
    0x6983: "PIN blocked",
    0x6984: "reference data invalidated",
    0x6985: "conditions of use not satisfied",
    0x6A81: "function not supported",
    0x6A82: "file or application not found",
    0x6A83: "record not found",
    0x6A86: "incorrect P1/P2",
    0x6D00: "instruction not supported",
    0x6E00: "class not supported",
}


class CardStatusError(DeviceError):
    """The card answered a status word other than 9000; ``sw`` is it. Use :func:`card_status_error`."""

    def __init__(self, sw: int, during: str, text: str = "") -> None:
        self.sw = sw
        super().__init__(f"card: {during}: {text or SW_TEXT.get(sw, 'unexpected status')} (SW {sw:04X})")


class PinWrong(CardStatusError):
    """The card refused the PIN (SW 63Cx); ``tries_left`` more before it blocks."""

    def __init__(self, sw: int, during: str) -> None:
        self.tries_left = sw & 0x0F
        super().__init__(sw, during, f"wrong PIN, {self.tries_left} tries left")


class PinBlocked(CardStatusError):
    """The card's PIN is blocked (SW 6983, or 63C0 after the last wrong try): only the issuer unblocks it."""

    def __init__(self, sw: int, during: str) -> None:
        super().__init__(sw, during, "PIN blocked")


def card_status_error(sw: int, during: str) -> CardStatusError:
    """The typed error for status word ``sw``: the PIN's status words are this module's business."""
    if sw == 0x6983 or sw == 0x63C0:
        return PinBlocked(sw, during)
    if sw & 0xFFF0 == 0x63C0:
        return PinWrong(sw, during)
    return CardStatusError(sw, during)


class PinRequired(DeviceError):
    """The card needs a PIN and the provider gave none."""


def apdu(cla: int, ins: int, p1: int, p2: int, data: bytes = b"", le: int | None = None) -> bytes:
    if len(data) > 255:
        raise LocalProtocolError("short APDU data is at most 255 bytes")
    out = bytes([cla, ins, p1, p2])
    if data:
        out += bytes([len(data)]) + data
    if le is not None:
        out += bytes([le & 0xFF])
    return out


def select_by_name(aid: bytes) -> bytes:
    return apdu(0x00, 0xA4, 0x04, 0x00, aid)


def select_file(fid: bytes) -> bytes:
    return apdu(0x00, 0xA4, 0x02, 0x00, fid)


def read_record(number: int, le: int = 0) -> bytes:
    """READ RECORD, P2=04: record ``number`` of the current EF."""
    return apdu(0x00, 0xB2, number, 0x04, le=le)


def verify_pin(pin: str) -> bytes:
    """VERIFY with the PIN as packed BCD (padded with F), as the social-security card expects."""
    if not (4 <= len(pin) <= 12 and pin.isdigit()):
        raise LocalProtocolError("PIN must be 4-12 digits")
    digits = pin + ("F" if len(pin) % 2 else "")
    return apdu(0x00, 0x20, 0x00, 0x00, bytes.fromhex(digits))


@dataclass(frozen=True)
class Response:
    data: bytes
    sw: int

    @property
    def ok(self) -> bool:
        return self.sw == 0x9000


def parse_response(raw: bytes) -> Response:
    if len(raw) < 2:
        raise RemoteProtocolError(f"APDU response shorter than SW1 SW2 ({len(raw)} bytes)")
    return Response(bytes(raw[:-2]), (raw[-2] << 8) | raw[-1])


def parse_record(data: bytes, tag: int) -> bytes:
    """A TLV record ``tag len value``; raises RemoteProtocolError if it is not that record."""
    if len(data) < 2 or data[0] != tag or 2 + data[1] > len(data):
        raise RemoteProtocolError(f"record {tag:02X} malformed")
    return data[2 : 2 + data[1]]


def _bcd(b: bytes) -> str:
    return b.hex().upper().rstrip("F")


@dataclass(repr=False, eq=False)
class SocialSecurityData:
    """Basic data of a social-security card, in memory only; repr masks, wipe() clears."""

    card_number: str = ""
    card_type: str = ""
    version: str = ""
    issuing_org: str = ""
    issue_date: str = ""
    expiry_date: str = ""
    ss_number: str = ""
    name: str = ""
    sex: str = ""
    nation: str = ""
    birthplace: str = ""
    birth_date: str = ""
    extra: dict = field(default_factory=dict)

    def masked(self) -> dict[str, str]:
        return {"card_number": mask_id_number(self.card_number), "ss_number": mask_id_number(self.ss_number),
                "name": mask_name(self.name)}

    def __repr__(self) -> str:
        return f"SocialSecurityData({self.masked()})"

    __str__ = __repr__

    def wipe(self) -> None:
        for k in ("card_number", "card_type", "version", "issuing_org", "issue_date", "expiry_date",
                  "ss_number", "name", "sex", "nation", "birthplace", "birth_date"):
            setattr(self, k, "")
        self.extra.clear()


def _text(v: bytes) -> str:
    return v.rstrip(b"\x00 ").decode("gbk", errors="replace")


EF05_RECORDS = {0x01: ("card_id_code", _bcd), 0x02: ("card_type", _text), 0x03: ("version", _text),
                0x04: ("issuing_org", _bcd), 0x05: ("issue_date", _bcd), 0x06: ("expiry_date", _bcd),
                0x07: ("card_number", _text)}
EF06_RECORDS = {0x08: ("ss_number", _text), 0x09: ("name", _text), 0x0A: ("sex", _text),
                0x0B: ("nation", _bcd), 0x0C: ("birthplace", _bcd), 0x0D: ("birth_date", _bcd)}


def read_social_security(
    transceive: Callable[[bytes], bytes],
    pin_provider: Callable[[], str | None] | None = None,
) -> SocialSecurityData:
    """Select DDF1 by name, read EF05 and EF06 records; ask ``pin_provider`` once if the card
    answers 6982 (security status not satisfied)."""

    def run(cmd: bytes, during: str, allow: tuple[int, ...] = ()) -> Response:
        r = parse_response(transceive(cmd))
        if not r.ok and r.sw not in allow:
            raise card_status_error(r.sw, during)
        return r

    out = SocialSecurityData()
    run(select_by_name(SSC_DDF1_AID), "select social-security application")
    verified = False
    for fid, records in ((EF05, EF05_RECORDS), (EF06, EF06_RECORDS)):
        run(select_file(fid), f"select EF{fid.hex().upper()[2:]}")
        for number, (name, conv) in records.items():
            r = run(read_record(number), f"read record {number:02X}", allow=(0x6982,))
            if r.sw == 0x6982:
                if verified:
                    raise card_status_error(r.sw, f"read record {number:02X}")
                pin = pin_provider() if pin_provider else None
                if not pin:
                    raise PinRequired("the card needs a PIN for its basic data and none was provided")
                run(verify_pin(pin), "verify PIN")
                verified = True
                r = run(read_record(number), f"read record {number:02X}")
            value = conv(parse_record(r.data, number))
            if hasattr(out, name):
                setattr(out, name, value)
            else:
                out.extra[name] = value
    if out.sex in ("1", "2"):
        out.sex = {"1": "男", "2": "女"}[out.sex]
    log.info("social-security card read", extra={"fields": out.masked()})
    return out
