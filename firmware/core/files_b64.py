"""``file_write``: file data as base64 in JSON, as hosts before firmware 1.4.0 send it.

Kept so that an old host can still flash a new board; a current host sends binary
``file_data`` frames instead. On the board (``command``) each chunk goes into the file's
``Upload`` (core/upload.py), made at offset 0 as the first ``file_data`` chunk makes one, and
is hashed as it comes: the commit after it is the streamed one, without core/files.py and
without a second read of the flash (the reference commands, core/files.py, write the part file
alone). Loaded only when such a host writes, and dropped after.
"""

from firmware.core import forget
from firmware.core.paths import PART, check_path
from firmware.core.relays import CommandError

_ALPHABET = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/"
MAX_TEXT = 344  # base64 of FILE_CHUNK (256) bytes


def command(sup, mtype: int, body):
    """file_write ``{"path", "off", "data"}`` for the supervisor ``sup``; then this module and
    the path rules leave the heap (the Upload stays until the commit)."""
    try:
        path = check_path(body.get("path"))
        off, chunk = chunk_of(body)
        up = sup.upload
        if not off:
            from firmware.core.fileopen import begin
            from firmware.core.upload import Upload

            sup.upload = None
            up = sup.upload = Upload(sup.hal.files, begin(sup.hal.files, path))
        elif up is None or isinstance(up, str) or up.part != path + PART:
            # Not the next chunk of the file being written: the host restarted mid-file (or
            # the board did), so it must start this file again at offset 0.
            raise CommandError("offset")
        return {"size": up.put(off, chunk)}
    finally:
        forget("files_b64")
        forget("fileopen")
        forget("paths")


def chunk_of(body: dict) -> tuple:
    """(off, the bytes) of a file_write body; CommandError("bad_args") unless ``off`` is a
    non-negative int and ``data`` canonical base64 of at most 256 bytes. Decoders skip
    characters outside the alphabet, so the text is checked first and a mangled chunk is
    refused rather than written short; checked in place, not by encoding the bytes again and
    comparing copies (this runs inside the command's heap budget)."""
    off = body.get("off")
    data = body.get("data")
    if not isinstance(off, int) or off < 0 or not isinstance(data, str):
        raise CommandError("bad_args")
    n = len(data)
    pads = 2 if data.endswith("==") else 1 if data.endswith("=") else 0
    if n % 4 or n > MAX_TEXT:
        raise CommandError("bad_args")
    i = 0
    for ch in data:
        if ch not in _ALPHABET and (ch != "=" or i < n - pads):
            raise CommandError("bad_args")
        i += 1
    # Canonical: the bits of the last character beyond the data are zero.
    if pads and _ALPHABET.find(data[n - pads - 1]) & (0x3 if pads == 1 else 0xF):
        raise CommandError("bad_args")
    import binascii

    try:
        try:
            return off, binascii.a2b_base64(data)  # the C module reads the text in place
        except TypeError:
            return off, binascii.a2b_base64(data.encode())  # a port's Python binascii wants bytes
    except Exception:  # ValueError on the board, a plain Exception in some ports' binascii
        raise CommandError("bad_args")
