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

The supervisor imports this module for a file command and drops it again when no file is open
(core/supervisor.py): its bytecode is in the heap only during a transfer.

Staged updates (docs/updates.md) use the same three commands: the new set's files go to
``sets/<version>/`` beside the running set (its ``set.txt`` lists each file's SHA-256 and size,
from the manifest the host verified), and committing ``fwset.json`` switches sets: the board
hashes every file of the set against ``set.txt`` first and only then renames the pointer
(firmware/bootsel.py), so a set with a missing or wrong file is never booted.
"""

from firmware.core.relays import CommandError

MAX_PATH = 64
PART = ".part"
READ_BLOCK = 256  # bytes per read while hashing
CHUNK = 256  # at most per file_data (link.FILE_CHUNK; not imported: the link is loaded already)
_NAME_CHARS = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_-."
_SUFFIXES = (".py", ".mpy", ".json")
POINTER = "fwset.json"


def check_path(path) -> str:
    """The path if it is one the host may write; CommandError("bad_path") otherwise."""
    if not isinstance(path, str) or not 0 < len(path) <= MAX_PATH:
        raise CommandError("bad_path")
    if path == POINTER:
        return path
    rel = path
    if path.startswith("sets/"):
        # sets/<version>/ then a path the root set may hold, or the set's own list
        cut = path.find("/", 5)
        if cut < 6:
            raise CommandError("bad_path")
        rel = path[cut + 1:]
    if rel != "main.py" and rel != "set.txt" and not rel.startswith("firmware/"):
        raise CommandError("bad_path")
    if rel == "set.txt" and rel == path:
        raise CommandError("bad_path")  # a set list belongs to a set
    for part in path.split("/"):
        if not part or part[0] == ".":
            raise CommandError("bad_path")  # empty segment, "/...", ".", "..", hidden names
        for ch in part:
            if ch not in _NAME_CHARS:
                raise CommandError("bad_path")
    ok = False
    for suffix in _SUFFIXES:
        if rel.endswith(suffix):
            ok = True
    if not ok and rel != "set.txt":
        raise CommandError("bad_path")
    return path


def hexdigest(h) -> str:
    import binascii

    return binascii.hexlify(h.digest()).decode()


def sha256_of(fs, path: str):
    """Hex SHA-256 of a file on ``fs``, or None. One open file and one small buffer for the
    whole file (the board has little RAM: a read per block would allocate a block each)."""
    import hashlib

    if fs.size(path) < 0:
        return None
    h = hashlib.sha256()
    buf = bytearray(READ_BLOCK)
    mv = memoryview(buf)
    f = fs.open(path)
    try:
        while True:
            n = f.readinto(buf)
            if not n:
                break
            h.update(mv[:n])
    finally:
        f.close()
    return hexdigest(h)


class FileTransfer:
    """The commands against a HAL filesystem (hal/fs.DirFs or hal/host.MemoryFs).

    ``path`` is the file open for file_data (None: none), ``off`` how much of it arrived.
    """

    def __init__(self, fs) -> None:
        self.fs = fs
        self.path = None
        self.part = ""
        self.off = 0
        self.hash = None

    def info(self, body: dict) -> dict:
        path = check_path(body.get("path"))
        try:
            size = self.fs.size(path)
            if size < 0:
                return {"path": path, "size": None, "sha256": None}
            return {"path": path, "size": size, "sha256": sha256_of(self.fs, path)}
        except OSError:
            raise CommandError("io")

    def open(self, body: dict) -> dict:
        """Start ``PATH.part`` empty (making its folders); file_data chunks follow from 0."""
        import hashlib

        path = check_path(body.get("path"))
        self.path = None
        part = path + PART
        try:
            if "/" in path:
                self.fs.makedirs(path.rsplit("/", 1)[0])
            self.fs.write(part, 0, b"")
        except OSError:
            raise CommandError("io")
        self.path = path
        self.part = part
        self.off = 0
        self.hash = hashlib.sha256()
        return {"path": path, "chunk": CHUNK}

    def data(self, payload) -> bytes:
        """One file_data payload: offset (4 bytes, big-endian) + 1..CHUNK bytes, a memoryview of
        the receive buffer on the board. Written and hashed from there, never copied."""
        n = len(payload) - 4
        if n < 1 or n > CHUNK:
            raise CommandError("chunk")  # before anything is touched
        h = self.hash
        if self.path is None or h is None:
            raise CommandError("no_upload")
        off = (payload[0] << 24) | (payload[1] << 16) | (payload[2] << 8) | payload[3]
        if off != self.off:
            # Stop-and-wait delivers chunks in order: a gap means the host lost its place and
            # starts the file again with file_open.
            raise CommandError("offset")
        chunk = payload[4:]
        try:
            self.fs.write(self.part, off, chunk)
        except OSError:
            self.path = None
            raise CommandError("io")
        h.update(chunk)
        self.off = off + n
        return self.off.to_bytes(4, "big")

    def write(self, body: dict) -> dict:
        """file_write from a host before 1.4.0 (base64 in JSON)."""
        from firmware.core.files_b64 import write

        self.path = None
        return write(self.fs, body, check_path(body.get("path")))

    def commit(self, body: dict) -> dict:
        path = check_path(body.get("path"))
        want = body.get("sha256")
        if not isinstance(want, str) or len(want) != 64:
            raise CommandError("bad_args")
        # The hash of what arrived by file_data, if that is what the part file holds; after
        # file_write (an old host) the part file is hashed from flash.
        streamed = self.hash if path == self.path else None
        self.path = None
        self.hash = None
        part = path + PART
        try:
            size = self.fs.size(part)
            if size < 0:
                raise CommandError("no_upload")
            got = hexdigest(streamed) if streamed is not None and size == self.off else sha256_of(self.fs, part)
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
