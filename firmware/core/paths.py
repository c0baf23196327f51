"""The path rules every file command checks.

core/fileopen.py (``file_open``), core/fileinfo.py (``file_info``) and core/files.py (the other
commands) import them from here, and drop this module with theirs after the command. Paths: ``main.py`` or files under
``firmware/``, plain names only, the same under a staged set ``sets/<version>/`` (plus the set's
own ``set.txt``), or the set pointer ``fwset.json``; nothing else on the board (least of all
the boot record). The check allocates nothing (no split, no slices): it runs inside the file
commands' small heap budget (docs/benchmarks.md).
"""

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
