"""``file_check`` (firmware 1.5.1): a staged set's files checked one per command, so that the set
switch need not hash the whole set in one command (more than the board's heap budget allows:
docs/benchmarks.md).

The host sends one ``file_check`` {"set": "sets/<version>"} per entry of the set's ``set.txt``
after staging it. Each checks the next entry (the file's size and SHA-256, hashed from flash as
``file_info`` does, with this module's own loop: core/fileinfo.py's would not fit the heap as
well) and advances the supervisor's record ``checked``: (set folder, offset in
``set.txt`` where the next unchecked entry starts, entries checked). The switch (core/
setswitch.py) needs that offset to be the size of ``set.txt``; otherwise firmware/bootsel.py
hashes the whole set itself as before. The record is in RAM, not on the flash: the commit of any file (the only step
that changes one, ``set.txt`` included) clears it (core/upload.py, core/files.py), and so does a
reset, so a file changed after its check cannot slip through, and nothing stale or forged on the
flash can stand in for a check. The supervisor loads this module and the hashing for one
command and drops them right after; it has a path rule of its own (``check_path``), not
core/paths.py's, whose code would not fit this command's heap.
"""

from firmware.core import forget
from firmware.core.relays import CommandError

LINE_MAX = 144  # one set.txt line: 64 hex + " " + size + " " + a path of at most 64 characters + "\n"


def command(sup, mtype: int, body):
    """file_check for the supervisor ``sup``; then this module and the hashing leave the heap."""
    try:
        return {"checked": check(sup.hal.files, sup, body)}
    finally:
        forget("setcheck")


def check(fs, owner, body) -> int:
    """Check the next unchecked entry of the set's set.txt against its file and advance
    ``owner.checked``; returns the entries checked so far. Refusals (bad_path, no_upload: no or
    malformed set.txt, hash: the file is missing or differs, io) leave the record as it was."""
    set_dir = body.get("set")
    if not isinstance(set_dir, str) or set_dir.find("/", 5) >= 0:
        raise CommandError("bad_path")
    listing = check_path(set_dir + "/set.txt")  # a set folder "sets/<version>", nothing else
    total = fs.size(listing)
    if total <= 0 or total > 8192:  # bootsel.entries' limit
        raise CommandError("no_upload")
    rec = getattr(owner, "checked", None)
    off, count = (rec[1], rec[2]) if rec is not None and rec[0] == set_dir else (0, 0)
    if off == total:
        return count  # every entry passed already
    # One buffer for the line and then the file's bytes: the line's fields are taken out of it
    # (the path, the digest the hex spells) before the hashing overwrites it.
    buf = bytearray(LINE_MAX)
    mv = memoryview(buf)
    try:
        f = fs.open(listing)
        try:
            f.seek(off)
            end = f.readinto(buf) or 0
        finally:
            f.close()
    except OSError:
        raise CommandError("io")
    end = buf.find(b"\n", 0, end) if end > 0 else -1
    # "<64 hex> <size> <path>": the size's digits summed in place, no slice or split.
    size = 0
    i = 65
    while 0 < end and i < end and 0x30 <= buf[i] <= 0x39:
        size = size * 10 + buf[i] - 0x30
        i += 1
    if end < 0 or buf[64] != 0x20 or i == 65 or i >= end or buf[i] != 0x20:
        raise CommandError("no_upload")
    try:
        path = set_dir + "/" + str(mv[i + 1:end], "utf-8")
    except ValueError:  # UnicodeError: not a path the rules allow
        raise CommandError("no_upload")
    path = check_path(path)
    # The hex spelled in the line's first 64 bytes (the hashing read into the rest) against
    # the digest, nibble by nibble: no copy of either. Any character but 0-9a-f gives a value
    # outside 0-255, so it never matches.
    j = 0
    for b in _digest(fs, path, mv[64:], size):
        hi = buf[j]
        lo = buf[j + 1]
        j += 2
        if ((hi - 48 if hi < 58 else hi - 87) << 4) + (lo - 48 if lo < 58 else lo - 87) != b:
            raise CommandError("hash")
    owner.checked = (set_dir, off + end + 1, count + 1)
    return count + 1


def check_path(path: str) -> str:
    """``path`` if it names a file inside a set folder ``sets/<version>/``; CommandError
    ("bad_path") otherwise. Only reads go there, and only files that core/paths.py's rules let
    the host write can exist in a set folder (set.txt itself was written so, which makes the
    set folder one those rules allow), so this need only keep the path inside it: no empty,
    hidden, "." or ".." segment, no NUL. Not core/paths.py's code: 560 B of this command's
    heap."""
    if not path.startswith("sets/") or "/." in path or "//" in path or "\0" in path:
        raise CommandError("bad_path")
    return path


def _digest(fs, path: str, room, size: int) -> bytes:
    """The SHA-256 digest of a file of ``size`` bytes, read through ``room`` (the line buffer
    after its first 64 bytes); CommandError("hash") when the file is missing, unreadable or of
    another size. This module's own loop rather than core/fileinfo.py's code: this command's
    heap has no room for that module as well."""
    import hashlib

    h = hashlib.sha256()
    got = 0
    try:
        f = fs.open(path)
        try:
            while True:
                n = f.readinto(room)
                if not n:
                    break
                got += n
                h.update(room if n == LINE_MAX - 64 else room[:n])
        finally:
            f.close()
    except OSError:
        got = -1
    if got != size:
        raise CommandError("hash")
    return h.digest()
