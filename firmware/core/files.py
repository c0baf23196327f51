"""File transfer over the link: how ``kiosk-provision flash-firmware`` updates the firmware.

Commands (docs/firmware.md): ``file_info`` (SHA-256 and size of a file, or absent),
``file_open`` (start ``PATH.part``), ``file_data`` (binary: a chunk at an offset, appended to
the part file and hashed as it arrives) and ``file_commit`` (compare the hash with the host's,
then rename the part file over PATH). Hosts from before 1.4.0 send ``file_write`` (base64 in
JSON, firmware/core/files_b64.py) instead of open/data; their commit hashes the part file from
flash. The rename is the only step that touches the live file, so a transfer cut anywhere
before it leaves the old file in place, and a wrong hash replaces nothing. Paths are checked
here once: ``main.py`` or files under ``firmware/``, plain names only, nothing else on the board
(least of all the boot record).

The supervisor loads this module for a file command and it drops itself again right after
(``command``): its bytecode is in the heap only while a command runs. The chunks themselves
(``file_data``) go straight to the open Upload (core/upload.py), and the commit of a file
that arrived that way loads only core/commit.py; this module takes every other commit.

Staged updates (docs/updates.md) use the same three commands: the new set's files go to
``sets/<version>/`` beside the running set (its ``set.txt`` lists each file's SHA-256 and size,
from the manifest the host verified), and committing ``fwset.json`` switches sets: the board
hashes every file of the set against ``set.txt`` first and only then renames the pointer
(firmware/bootsel.py), so a set with a missing or wrong file is never booted.
"""

import binascii

from firmware import link as L
from firmware.core.relays import CommandError

MAX_PATH = 64
PART = ".part"
READ_BLOCK = 256  # bytes per read while hashing
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


# The file-transfer code, taken out of the heap after each command (core/upload.py stays while
# a file is open): (package, name, full name).
MODULES = (("firmware.core", "files", "firmware.core.files"),
           ("firmware.core", "files_b64", "firmware.core.files_b64"),
           ("firmware", "bootsel", "firmware.bootsel"),
           ("firmware.core", "commit", "firmware.core.commit"),
           ("firmware.core", "upload", "firmware.core.upload"))


def command(sup, mtype: int, body):
    """Run a file command for the supervisor ``sup`` (its open Upload is ``sup.upload``; chunks
    of it never come here), then drop the file-transfer code from the heap again."""
    ft = FileTransfer(sup.hal.files)
    ft.upload = sup.upload
    try:
        if mtype == L.FILE_INFO:
            return ft.info(body)
        if mtype == L.FILE_OPEN:
            return ft.open(body)
        if mtype == L.FILE_WRITE:
            return ft.write(body)
        if mtype == L.FILE_COMMIT:
            return ft.commit(body)
        return ft.data(body)
    finally:
        sup.upload = ft.upload
        drop(ft.upload is not None)


def drop(keep_upload: bool = False) -> None:
    """Unload the file-transfer modules: a module stays in the heap while sys.modules or its
    package refers to it. Collected at once on the board (the WebAssembly port collects at its
    next top-level call). Only on MicroPython: on CPython (the simulator) there is no heap budget,
    and importing the modules again for every file command would only cost time."""
    import gc
    import sys

    if sys.implementation.name != "micropython":
        return
    for pkg, name, full in MODULES:
        if not (keep_upload and name == "upload"):
            sys.modules.pop(full, None)
            sys.modules[pkg].__dict__.pop(name, None)
    gc.collect()


class FileTransfer:
    """The commands against a HAL filesystem (hal/fs.DirFs or hal/host.MemoryFs). ``upload``: the
    file open for file_data (core/upload.py), kept by the supervisor between commands."""

    def __init__(self, fs) -> None:
        self.fs = fs
        self.upload = None

    def info(self, body: dict) -> dict:
        path = check_path(body.get("path"))
        size = self.fs.size(path)
        if size < 0:
            return {"path": path, "size": None, "sha256": None}
        try:
            return {"path": path, "size": size, "sha256": sha256_of(self.fs, path)}
        except OSError:
            raise CommandError("io")

    def open(self, body: dict) -> dict:
        """Start ``PATH.part`` empty (making its folders); file_data chunks follow from 0."""
        from firmware.core.upload import Upload

        path = check_path(body.get("path"))
        self.upload = None
        part = path + PART
        try:
            cut = path.rfind("/")
            if cut > 0:
                self.fs.makedirs(path[:cut])  # one slice, not rsplit's list and two strings
            self.fs.write(part, 0, b"")
        except OSError:
            raise CommandError("io")
        self.upload = Upload(self.fs, part)
        return {"path": path, "chunk": CHUNK}

    def data(self, payload) -> bytes:
        if self.upload is None:
            raise CommandError("no_upload")
        return self.upload.data(payload)

    def write(self, body: dict) -> dict:
        """file_write from a host before 1.4.0 (base64 in JSON)."""
        from firmware.core.files_b64 import write

        self.upload = None
        return write(self.fs, body, check_path(body.get("path")))

    def commit(self, body: dict) -> dict:
        path = check_path(body.get("path"))
        want = body.get("sha256")
        if not isinstance(want, str) or len(want) != 64:
            raise CommandError("bad_args")
        up = self.upload
        self.upload = None
        part = path + PART
        try:
            size = self.fs.size(part)
            if size < 0:
                raise CommandError("no_upload")
            if up is not None and up.part == part and up.off == size:
                # What arrived by file_data was hashed as it came: no second read of the flash.
                got = binascii.hexlify(up.hash.digest()).decode()
            else:
                got = sha256_of(self.fs, part)  # after file_write (an old host)
            if got != want.lower():
                self.fs.remove(part)
                raise CommandError("hash")
            if path == POINTER:
                # Loaded only here: its code stays out of the heap during the file transfers.
                from firmware.bootsel import switch

                switch(self.fs, part, size, check_path, sha256_of)
                return {"path": path, "size": size, "sha256": got}
            self.fs.rename(part, path)
        except OSError:
            self.fs.remove(part)
            raise CommandError("io")
        return {"path": path, "size": size, "sha256": got}
