"""``file_commit`` of the file that arrived by ``file_data``, without core/files.py.

The open Upload (core/upload.py) holds everything this commit needs: its path was checked at
``file_open`` (the part file's name is that path plus ``.part``) and its SHA-256 was computed as
the chunks came. So the supervisor loads this small module instead of core/files.py (2.5 KB in
the heap) for it; anything else (another path, an old host's part file, the set pointer, a
malformed request) takes the long way through core/files.py, which checks and refuses. Either
way the upload and this module leave the heap after the command.
"""

import binascii

from firmware.core import forget
from firmware.core.relays import CommandError


def command(sup, mtype: int, body):
    up = sup.upload
    fs = sup.hal.files
    path = body.get("path")
    want = body.get("sha256")
    part = up.part
    if (not isinstance(path, str) or len(part) != len(path) + 5 or not part.startswith(path)
            or path == "fwset.json" or not isinstance(want, str) or len(want) != 64
            or (up.off and fs.size(part) != up.off)):
        from firmware.core.files import command

        return command(sup, mtype, body)
    sup.upload = None
    try:
        return finish(fs, path, part, up.off, binascii.hexlify(up.hash.digest()).decode(), want)
    finally:
        unload()


def unload() -> None:
    """The transfer is over: this module and the upload's leave the heap, as core/files.drop
    does on the long way (without loading 2.5 KB of core/files.py for it)."""
    forget("upload")
    forget("commit")


def finish(fs, path: str, part: str, size: int, got: str, want: str) -> dict:
    """Rename the part file over ``path`` if its hash ``got`` is the one wanted; otherwise (or
    when the rename fails) remove it: a wrong hash replaces nothing."""
    if got != want and got != want.lower():  # lower() only for a host that sends upper case
        fs.remove(part)
        raise CommandError("hash")
    try:
        if not size:
            fs.write(part, 0, b"")  # an empty file: no chunk created its part file
        fs.rename(part, path)
    except OSError:
        fs.remove(part)
        raise CommandError("io")
    return {"path": path, "size": size, "sha256": got}
