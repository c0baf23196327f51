"""The path rules every file command checks, and ``file_open``.

The supervisor loads this module, not core/files.py (2.5 KB in the heap), for ``file_open``
(the Upload, core/upload.py, that the chunks go to); core/fileinfo.py (``file_info``) and
core/files.py (the other commands) import the path rules from here. Paths: ``main.py`` or files under
``firmware/``, plain names only, the same under a staged set ``sets/<version>/`` (plus the set's
own ``set.txt``), or the set pointer ``fwset.json``; nothing else on the board (least of all
the boot record). The check allocates nothing (no split, no slices): it runs inside the file
commands' small heap budget (docs/benchmarks.md).
"""

from firmware.core import forget
from firmware.core.relays import CommandError

MAX_PATH = 64
PART = ".part"
CHUNK = 256  # at most per file_data (link.FILE_CHUNK)
_NAME_CHARS = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_-."
POINTER = "fwset.json"


def check_path(path) -> str:
    """The path if it is one the host may write; CommandError("bad_path") otherwise. (One
    raise at the end: this function's bytecode is in every path-checking command's heap.)"""
    if path == POINTER:
        return path
    if isinstance(path, str) and 0 < len(path) <= MAX_PATH:
        # Where the path a root set may hold starts: after "sets/<version>/" in a staged set.
        rel = path.find("/", 5) + 1 if path.startswith("sets/") else 0
        tail = len(path) - rel
        if (path.startswith("set.txt", rel) and tail == 7 and rel  # a set list belongs to a set
                or path.startswith("main.py", rel) and tail == 7
                or path.startswith("firmware/", rel)
                and (path.endswith(".py") or path.endswith(".mpy") or path.endswith(".json"))):
            prev = "/"  # the segment starts at the first character
            for ch in path:
                # No empty segment (nor an empty version), no ".", "..", hidden names.
                if prev == "/" and (ch == "/" or ch == ".") or ch != "/" and ch not in _NAME_CHARS:
                    break
                prev = ch
            else:
                if prev != "/":  # not a folder
                    return path
    raise CommandError("bad_path")


def command(sup, mtype: int, body):
    """file_open for the supervisor ``sup``: its open Upload becomes this file's; then this
    module leaves the heap again, the Upload stays."""
    try:
        path = check_path(body.get("path"))
        sup.upload = None
        sup.upload = begin(sup.hal.files, path)
        return {"chunk": CHUNK}  # the path is the host's own: not echoed (a reply is 4 buffers on the heap)
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
