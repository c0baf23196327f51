"""Resident ID card reader protocol (SAM_V module, GA 467 frames), sans-IO.

Frame (both directions)::

    AA AA AA 96 69 | LEN (2, big-endian) | body | CHK

LEN counts the body and the checksum. Host body: ``CMD PARA [data]``; reader body:
``SW1 SW2 SW3 [data]`` with SW3 the status (90 ok, 9F card found, ...). CHK is the XOR of the
two LEN bytes and the body.

Also here: decoding the 256-byte UCS-2LE text block of the three card types that answer
``30 01`` — resident ID card, Hong Kong/Macao/Taiwan residence permit (type flag ``J`` at
byte 248) and the 2023 foreigner's permanent residence ID card (``Y``); the 2017 foreigner's
card (``I``) is decoded too. The photo is WLT-compressed; decoding it needs the licensed vendor
library, so it is kept as opaque bytes and never decoded here.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from foundation.errors import DeviceError, LocalProtocolError, RemoteProtocolError
from foundation.logs import mask_id_number, mask_name

PREAMBLE = b"\xaa\xaa\xaa\x96\x69"
MAX_LEN = 0x1000  # the longest real answer (text + photo + fingerprints) is under 3 kB

# Commands: (CMD, PARA)
RESET_SAM = (0x10, 0xFF)
SAM_STATUS = (0x11, 0xFF)
READ_SAM_ID = (0x12, 0xFF)
FIND_CARD = (0x20, 0x01)
SELECT_CARD = (0x20, 0x02)
READ_TEXT_PHOTO = (0x30, 0x01)
READ_TEXT_PHOTO_FP = (0x30, 0x10)

OK = 0x90
CARD_FOUND = 0x9F

STATUS_TEXT = {
    0x90: "success",
    0x9F: "card found",
    0x10: "reader got a frame with a bad checksum",
    0x11: "reader got a frame with a bad length",
    0x21: "reader got an unknown command",
    0x23: "operation not permitted",
    0x24: "unknown error in the reader",
    0x31: "card failed to authenticate the SAM",
    0x32: "SAM failed to authenticate the card",
    0x33: "information check failed",
    0x40: "unknown card type",
    0x41: "reading the card failed (card moved?)",
    0x47: "getting a random number failed",
    0x60: "SAM self-test failed",
    0x66: "SAM not authorised",
    0x80: "no card found",
    0x81: "selecting the card failed",
    0x91: "no content for this item",
}


class SamvStatusError(DeviceError):
    """The reader answered with a status other than success; ``status`` is SW3."""

    def __init__(self, status: int, during: str) -> None:
        self.status = status
        text = STATUS_TEXT.get(status, "unknown status")
        super().__init__(f"ID card reader: {during}: {text} (status {status:02X})")


def checksum(data: bytes) -> int:
    c = 0
    for b in data:
        c ^= b
    return c


def _frame(body: bytes) -> bytes:
    n = len(body) + 1
    if n > MAX_LEN:
        raise LocalProtocolError(f"SAM_V frame body too long ({n} bytes)")
    head = bytes([n >> 8, n & 0xFF])
    return PREAMBLE + head + body + bytes([checksum(head + body)])


def command(cmd: tuple[int, int], data: bytes = b"") -> bytes:
    """Host -> reader frame, e.g. ``command(FIND_CARD)`` = ``AA AA AA 96 69 00 03 20 01 22``."""
    return _frame(bytes(cmd) + data)


def response(status: int, data: bytes = b"", sw1: int = 0, sw2: int = 0) -> bytes:
    """Reader -> host frame (the simulator's side)."""
    return _frame(bytes([sw1, sw2, status]) + data)


@dataclass(frozen=True)
class Command:
    cmd: int
    para: int
    data: bytes


@dataclass(frozen=True)
class Response:
    sw1: int
    sw2: int
    status: int
    data: bytes


@dataclass(frozen=True)
class FrameError:
    """A frame was dropped (bad checksum, impossible length, noise); the decoder resynchronised
    on the next preamble."""

    reason: str
    skipped: int


class SamvDecoder:
    """Incremental decoder. ``from_host=True`` on the reader's side (yields :class:`Command`),
    else yields :class:`Response`. Never raises on input; bad bytes become :class:`FrameError`."""

    def __init__(self, *, from_host: bool = False) -> None:
        self.from_host = from_host
        self._buf = bytearray()

    def feed(self, data: bytes) -> list[Command | Response | FrameError]:
        buf = self._buf
        buf += data
        events: list[Command | Response | FrameError] = []
        while True:
            start = buf.find(PREAMBLE)
            if start < 0:
                # Keep a tail that may be the start of a preamble.
                keep = 0
                for k in range(min(4, len(buf)), 0, -1):
                    if PREAMBLE.startswith(bytes(buf[-k:])):
                        keep = k
                        break
                if len(buf) - keep:
                    events.append(FrameError("noise", len(buf) - keep))
                del buf[: len(buf) - keep]
                return events
            if start:
                events.append(FrameError("noise", start))
                del buf[:start]
            if len(buf) < 7:
                return events
            n = (buf[5] << 8) | buf[6]
            minimum = 3 if self.from_host else 4
            if n < minimum or n > MAX_LEN:
                events.append(FrameError(f"bad length {n}", 1))
                del buf[:1]
                continue
            if len(buf) < 7 + n:
                return events
            body = bytes(buf[7 : 7 + n - 1])
            if checksum(bytes(buf[5:7]) + body) != buf[6 + n]:
                events.append(FrameError("bad checksum", 1))
                del buf[:1]  # the real frame may start inside this one
                continue
            del buf[: 7 + n]
            if self.from_host:
                events.append(Command(body[0], body[1], body[2:]))
            else:
                events.append(Response(body[0], body[1], body[2], body[3:]))


# -- read answer and text block ------------------------------------------------------------------


def split_read_answer(data: bytes) -> tuple[bytes, bytes, bytes]:
    """Data of a ``30 01``/``30 10`` answer -> (text, photo, fingerprint). Raises
    :class:`~foundation.errors.RemoteProtocolError` if the announced lengths do not fit."""
    if len(data) < 4:
        raise RemoteProtocolError("read answer shorter than its length fields")
    tlen = (data[0] << 8) | data[1]
    plen = (data[2] << 8) | data[3]
    off = 4
    flen = 0
    if len(data) >= 6 + tlen + plen and len(data) != 4 + tlen + plen:
        flen = (data[4] << 8) | data[5]
        off = 6
    if len(data) != off + tlen + plen + flen:
        raise RemoteProtocolError(f"read answer lengths {tlen}+{plen}+{flen} do not match {len(data)} bytes")
    text = data[off : off + tlen]
    photo = data[off + tlen : off + tlen + plen]
    fp = data[off + tlen + plen :]
    return text, photo, fp


NATIONS = dict(enumerate(
    "汉 蒙古 回 藏 维吾尔 苗 彝 壮 布依 朝鲜 满 侗 瑶 白 土家 哈尼 哈萨克 傣 黎 傈僳 佤 畲 高山 拉祜 水 东乡 纳西 景颇 "
    "柯尔克孜 土 达斡尔 仫佬 羌 布朗 撒拉 毛南 仡佬 锡伯 阿昌 普米 塔吉克 怒 乌孜别克 俄罗斯 鄂温克 德昂 保安 裕固 京 "
    "塔塔尔 独龙 鄂伦春 赫哲 门巴 珞巴 基诺".split(), start=1))
NATIONS.update({97: "其他", 98: "外国血统中国籍人士"})
SEX = {"0": "未知", "1": "男", "2": "女", "9": "未说明"}

# name -> (offset, length) in bytes of the 256-byte block, per card type flag.
LAYOUTS: dict[str, dict[str, tuple[int, int]]] = {
    "resident": {"name": (0, 30), "sex": (30, 2), "nation": (32, 4), "birth": (36, 16), "address": (52, 70),
                 "id_number": (122, 36), "authority": (158, 30), "valid_from": (188, 16),
                 "valid_until": (204, 16)},
    "J": {"name": (0, 30), "sex": (30, 2), "birth": (36, 16), "address": (52, 70), "id_number": (122, 36),
          "authority": (158, 30), "valid_from": (188, 16), "valid_until": (204, 16), "pass_number": (220, 18),
          "issue_count": (238, 4)},
    "Y": {"name": (0, 30), "sex": (30, 2), "issue_count": (32, 4), "birth": (36, 16), "english_name": (52, 70),
          "id_number": (122, 36), "authority": (158, 30), "valid_from": (188, 16), "valid_until": (204, 16),
          "english_name_more": (220, 20), "nationality": (240, 6), "previous_number_flag": (246, 2)},
    "I": {"english_name": (0, 120), "sex": (120, 2), "id_number": (122, 30), "nationality": (152, 6),
          "name": (158, 30), "valid_from": (188, 16), "valid_until": (204, 16), "birth": (220, 16),
          "version": (236, 4), "authority": (240, 8)},
}
TYPE_FLAG_OFFSET = 248
CARD_TYPES = {"resident": "resident_id", "J": "hk_macao_taiwan_permit", "Y": "foreign_permanent_2023",
              "I": "foreign_permanent_2017"}


@dataclass(repr=False, eq=False)
class Identity:
    """A card holder's identity, in memory only. ``repr`` masks it; :meth:`wipe` clears it."""

    card_type: str
    name: str = ""
    sex: str = ""
    nation: str = ""
    birth: str = ""
    address: str = ""
    id_number: str = ""
    authority: str = ""
    valid_from: str = ""
    valid_until: str = ""
    english_name: str = ""
    nationality: str = ""
    pass_number: str = ""
    issue_count: str = ""
    photo_wlt: bytearray = field(default_factory=bytearray)
    photo_note: str = "WLT-compressed photo kept as opaque bytes; decoding needs the licensed vendor library"

    def masked(self) -> dict[str, str]:
        """What may be shown to staff or logged: type, masked name and number."""
        return {"card_type": self.card_type, "name": mask_name(self.name),
                "id_number": mask_id_number(self.id_number)}

    def __repr__(self) -> str:
        m = self.masked()
        return f"Identity(card_type={m['card_type']!r}, name={m['name']!r}, id_number={m['id_number']!r})"

    __str__ = __repr__

    def wipe(self) -> None:
        """Forget the holder: photo bytes zeroed in place, text fields emptied. (Python strings
        are immutable, so their old copies are only released to the allocator.)"""
        for i in range(len(self.photo_wlt)):
            self.photo_wlt[i] = 0
        self.photo_wlt = bytearray()
        for name in ("name", "sex", "nation", "birth", "address", "id_number", "authority", "valid_from",
                     "valid_until", "english_name", "nationality", "pass_number", "issue_count"):
            setattr(self, name, "")
        self.card_type = "wiped"

    @property
    def wiped(self) -> bool:
        return self.card_type == "wiped"


def _field(block: bytes, off: int, length: int) -> str:
    return block[off : off + length].decode("utf-16-le", errors="replace").rstrip(" \x00")


def card_type_flag(block: bytes) -> str:
    flag = _field(block, TYPE_FLAG_OFFSET, 2)
    return flag if flag in ("J", "Y", "I") else "resident"


def decode_text(block: bytes, photo: bytes = b"") -> Identity:
    """256-byte UCS-2LE text block -> :class:`Identity`. Raises RemoteProtocolError if short."""
    if len(block) != 256:
        raise RemoteProtocolError(f"ID card text block must be 256 bytes, got {len(block)}")
    flag = card_type_flag(block)
    values = {k: _field(block, off, n) for k, (off, n) in LAYOUTS[flag].items()}
    ident = Identity(CARD_TYPES[flag], photo_wlt=bytearray(photo))
    for k, v in values.items():
        if hasattr(ident, k):
            setattr(ident, k, v)
    if "english_name_more" in values:
        ident.english_name = (values["english_name"] + values["english_name_more"]).strip()
    if ident.sex in SEX:
        ident.sex = SEX[ident.sex]
    if flag == "resident" and ident.nation.isdigit():
        ident.nation = NATIONS.get(int(ident.nation), ident.nation)
    return ident


def encode_text(flag: str, values: dict[str, str]) -> bytes:
    """The inverse of :func:`decode_text` (used by the simulator and fixtures): fields are
    UCS-2LE, space padded; the type flag goes at byte 248."""
    if flag not in LAYOUTS:
        raise LocalProtocolError(f"unknown card layout {flag!r}")
    block = bytearray(" ".encode("utf-16-le") * 128)
    for k, (off, n) in LAYOUTS[flag].items():
        if k in values:
            raw = values[k].encode("utf-16-le")
            if len(raw) > n:
                raise LocalProtocolError(f"field {k} longer than {n // 2} characters")
            block[off : off + len(raw)] = raw
    if flag != "resident":
        block[TYPE_FLAG_OFFSET : TYPE_FLAG_OFFSET + 2] = flag.encode("utf-16-le")
    return bytes(block)
