"""``file_info``: the size and SHA-256 of a file on the board, hashed from flash.

The supervisor loads this module (and the path rules, core/paths.py) for ``file_info`` and
drops both right after (core.forget); core/files.py uses the hashing for the commit of a file
that came by base64 ``file_write`` and for the set switch. Kept apart from core/paths.py so
that ``file_open`` does not carry the hashing code, nor ``file_info`` the part file's.
"""

from firmware.core import forget
from firmware.core.paths import check_path
from firmware.core.relays import CommandError

READ_BLOCK = 64  # bytes per read while hashing: its buffer is in file_info's heap budget


def command(sup, mtype: int, body):
    """file_info for the supervisor ``sup``; then this module and the path rules leave the heap."""
    try:
        return info(sup.hal.files, body)
    finally:
        forget("fileinfo")
        forget("paths")


def info(fs, body: dict) -> dict:
    """file_info: the size and SHA-256 of a file, or None for both when it is absent (or a
    folder). The size is counted while hashing: no stat of the file as well."""
    path = check_path(body.get("path"))
    try:
        f = fs.open(path)
    except OSError:
        return {"size": None, "sha256": None}
    try:
        size, sha = _digest(f)
    except OSError:
        raise CommandError("io")
    finally:
        f.close()
    return {"size": size, "sha256": sha}


def sha256_of(fs, path: str):
    """Hex SHA-256 of a file on ``fs``, or None when it cannot be opened."""
    try:
        f = fs.open(path)
    except OSError:
        return None
    try:
        return _digest(f)[1]
    finally:
        f.close()


def _digest(f) -> tuple:
    """(size, hex SHA-256) of the open file ``f``, read through one small buffer for the whole
    file (the board has little RAM: a read per block would allocate a block each)."""
    import hashlib

    h = hashlib.sha256()
    buf = bytearray(READ_BLOCK)
    size = 0
    while True:
        n = f.readinto(buf)
        if not n:
            break
        size += n
        # A full block as it is: a slice (memoryview) per block would be garbage per block.
        h.update(buf if n == READ_BLOCK else memoryview(buf)[:n])
    return size, h.digest().hex()  # one string, not hexlify's bytes and their copy
