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
flash can stand in for a check. The supervisor loads this module with the path rules and the
hashing for one command and drops them right after.
"""

from firmware.core import forget
from firmware.core.relays import CommandError

LINE_MAX = 144  # one set.txt line: 64 hex + " " + size + " " + a path of at most 64 characters + "\n"


def command(sup, mtype: int, body):
    """file_check for the supervisor ``sup``; then this module, the hashing and the path rules
    leave the heap."""
    try:
        return {"checked": check(sup.hal.files, sup, body)}
    finally:
        forget("setcheck")
        forget("paths")


def check(fs, owner, body) -> int:
    """Check the next unchecked entry of the set's set.txt against its file and advance
    ``owner.checked``; returns the entries checked so far. Refusals (bad_path, no_upload: no or
    malformed set.txt, hash: the file is missing or differs, io) leave the record as it was."""
    from firmware.core.paths import check_path

    set_dir = body.get("set")
    if not isinstance(set_dir, str):
        raise CommandError("bad_path")
    listing = check_path(set_dir + "/set.txt")  # a set folder "sets/<version>", nothing else
    total = fs.size(listing)
    if total <= 0 or total > 8192:  # bootsel.entries' limit
        raise CommandError("no_upload")
    rec = getattr(owner, "checked", None)
    off, count = (rec[1], rec[2]) if rec is not None and rec[0] == set_dir else (0, 0)
    if off == total:
        return count  # every entry passed already
    try:
        line = fs.read(listing, off, min(LINE_MAX, total - off))
    except OSError:
        raise CommandError("io")
    end = line.find(b"\n")
    parts = line[:end].decode().split(" ") if end > 0 else ()
    if len(parts) != 3 or len(parts[0]) != 64 or not parts[1].isdigit():
        raise CommandError("no_upload")
    if _digest(fs, check_path(set_dir + "/" + parts[2])) != (int(parts[1]), parts[0]):
        raise CommandError("hash")
    owner.checked = (set_dir, off + end + 1, count + 1)
    return count + 1


def _digest(fs, path: str):
    """(size, hex SHA-256) of a file, or None when it cannot be read. Read through the
    ``line`` buffer's size again rather than core/fileinfo.py's code: this command's heap has
    no room for that module as well."""
    import hashlib

    try:
        f = fs.open(path)
    except OSError:
        return None
    h = hashlib.sha256()
    buf = bytearray(LINE_MAX)
    size = 0
    try:
        while True:
            n = f.readinto(buf)
            if not n:
                break
            size += n
            h.update(buf if n == LINE_MAX else memoryview(buf)[:n])
    except OSError:
        return None
    finally:
        f.close()
    return size, h.digest().hex()
