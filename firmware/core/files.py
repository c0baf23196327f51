"""File transfer over the link: how ``kiosk-provision flash-firmware`` updates the firmware.

Three commands (docs/firmware.md): ``file_info`` (SHA-256 and size of a file, or absent),
``file_write`` (a chunk at an offset, into ``PATH.part``) and ``file_commit`` (hash the part
file, compare with the host's hash, then rename it over PATH). The rename is the only step that
touches the live file, so a transfer cut anywhere before it leaves the old file in place, and a
wrong hash replaces nothing. Paths are checked here once: ``main.py`` or files under
``firmware/``, plain names only, nothing else on the board (least of all the boot record).

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


def sha256_of(fs, path: str):
    """Hex SHA-256 of a file on ``fs``, or None. One open file and one small buffer for the
    whole file (the board has little RAM: a read per block would allocate a block each)."""
    import binascii
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
    return binascii.hexlify(h.digest()).decode()


class FileTransfer:
    """The three commands against a HAL filesystem (hal/fs.DirFs or hal/host.MemoryFs)."""

    def __init__(self, fs) -> None:
        self.fs = fs

    def info(self, body: dict) -> dict:
        path = check_path(body.get("path"))
        try:
            size = self.fs.size(path)
            if size < 0:
                return {"path": path, "size": None, "sha256": None}
            return {"path": path, "size": size, "sha256": sha256_of(self.fs, path)}
        except OSError:
            raise CommandError("io")

    def write(self, body: dict) -> dict:
        path = check_path(body.get("path"))
        off = body.get("off")
        data = body.get("data")
        if not isinstance(off, int) or off < 0 or not isinstance(data, str):
            raise CommandError("bad_args")
        # Imported on first use: a board that is never flashed over the link does not pay for
        # them (built in on the rp2 port, but pure Python on some ports, e.g. WebAssembly).
        import binascii

        raw = data.encode()
        try:
            chunk = binascii.a2b_base64(raw)
        except Exception:  # ValueError on the board, a plain Exception in some ports' binascii
            raise CommandError("bad_args")
        # Decoders skip characters outside the alphabet; only canonical base64 is accepted, so
        # a mangled chunk is refused rather than written short. Compared as bytes: no copies.
        if binascii.b2a_base64(chunk, newline=False) != raw:
            raise CommandError("bad_args")
        part = path + PART
        try:
            if off == 0:
                if "/" in path:
                    self.fs.makedirs(path.rsplit("/", 1)[0])
            elif self.fs.size(part) != off:
                # Chunks arrive in order (the link is stop-and-wait): a gap means the host
                # restarted mid-file, so it must start this file again at offset 0.
                raise CommandError("offset")
            size = self.fs.write(part, off, chunk)
        except OSError:
            raise CommandError("io")
        return {"path": path, "size": size}

    def commit(self, body: dict) -> dict:
        path = check_path(body.get("path"))
        want = body.get("sha256")
        if not isinstance(want, str) or len(want) != 64:
            raise CommandError("bad_args")
        part = path + PART
        try:
            got = sha256_of(self.fs, part)
            if got is None:
                raise CommandError("no_upload")
            if got != want.lower():
                self.fs.remove(part)
                raise CommandError("hash")
            size = self.fs.size(part)
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
