"""The path rules every file command checks, and the two commands that need nothing else.

The supervisor loads this module, not core/files.py (2.5 KB in the heap), for ``file_info``
(size and SHA-256 of a file, hashed from flash) and ``file_open`` (the part file, and the
Upload, core/upload.py, that the chunks go to). core/files.py imports the path rules and the
hashing from here for the other commands. Paths: ``main.py`` or files under
``firmware/``, plain names only, the same under a staged set ``sets/<version>/`` (plus the set's
own ``set.txt``), or the set pointer ``fwset.json``; nothing else on the board (least of all
the boot record). The check allocates nothing (no split, no slices): it runs inside the file
commands' small heap budget (docs/benchmarks.md).
"""

import binascii

from firmware import link as L
from firmware.core import forget
from firmware.core.relays import CommandError

MAX_PATH = 64
READ_BLOCK = 64  # bytes per read while hashing: its buffer is in file_info's heap budget
PART = ".part"
CHUNK = 256  # at most per file_data (link.FILE_CHUNK)
_NAME_CHARS = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_-."
POINTER = "fwset.json"


def check_path(path) -> str:
    """The path if it is one the host may write; CommandError("bad_path") otherwise."""
    if not isinstance(path, str) or not 0 < len(path) <= MAX_PATH:
        raise CommandError("bad_path")
    if path == POINTER:
        return path
    n = len(path)
    rel = 0  # where the path a root set may hold starts
    if path.startswith("sets/"):
        rel = path.find("/", 5) + 1
        if rel < 7:
            raise CommandError("bad_path")  # no version, or an empty one
    if path.startswith("set.txt", rel) and n == rel + 7:
        if not rel:
            raise CommandError("bad_path")  # a set list belongs to a set
    elif not (path.startswith("main.py", rel) and n == rel + 7) and not (
            path.startswith("firmware/", rel)
            and (path.endswith(".py") or path.endswith(".mpy") or path.endswith(".json"))):
        raise CommandError("bad_path")
    prev = "/"  # the segment starts at the first character
    for ch in path:
        if prev == "/" and (ch == "/" or ch == "."):
            raise CommandError("bad_path")  # empty segment, ".", "..", hidden names
        if ch != "/" and ch not in _NAME_CHARS:
            raise CommandError("bad_path")
        prev = ch
    if prev == "/":
        raise CommandError("bad_path")  # ends with "/"
    return path



def command(sup, mtype: int, body):
    """file_info or file_open for the supervisor ``sup`` (file_open: its open Upload becomes
    this file's); then this module leaves the heap again, the Upload stays."""
    try:
        if mtype == L.FILE_INFO:
            return info(sup.hal.files, body)
        path = check_path(body.get("path"))
        sup.upload = None
        sup.upload = begin(sup.hal.files, path)
        return {"path": path, "chunk": CHUNK}
    finally:
        forget("paths")


def begin(fs, path: str):
    """The Upload that file_data chunks for ``path`` (already checked) go to, from offset 0,
    into ``PATH.part``; its folders are made now. The first chunk creates the part file (and
    truncates one an earlier transfer left); the commit of an empty file creates it empty."""
    from firmware.core.upload import Upload

    cut = path.rfind("/")
    if cut > 0:
        fs.makedirs(path[:cut])  # one slice, not rsplit's list and two strings
    return Upload(fs, path + PART)


def info(fs, body: dict) -> dict:
    """file_info: the size and SHA-256 of a file, or None for both when it is absent."""
    path = check_path(body.get("path"))
    size = fs.size(path)
    if size < 0:
        return {"path": path, "size": None, "sha256": None}
    try:
        return {"path": path, "size": size, "sha256": sha256_of(fs, path)}
    except OSError:
        raise CommandError("io")


def sha256_of(fs, path: str):
    """Hex SHA-256 of a file on ``fs``, or None. One open file and one small buffer for the
    whole file (the board has little RAM: a read per block would allocate a block each)."""
    import hashlib

    h = hashlib.sha256()
    buf = bytearray(READ_BLOCK)
    try:
        f = fs.open(path)
    except OSError:
        return None
    try:
        while True:
            n = f.readinto(buf)
            if not n:
                break
            # A full block as it is: a slice (memoryview) per block would be garbage per block.
            h.update(buf if n == READ_BLOCK else memoryview(buf)[:n])
    finally:
        f.close()
    return binascii.hexlify(h.digest()).decode()
