"""Privacy in a memory dump: is a resident's data still in a kiosk process after their session?

The soak (benchmarks/soak.py) calls :func:`scan` on the real Kivy kiosk once every resident's
session has ended (the app waits on the attract screen): it stops the process (SIGSTOP, so the
memory does not change under the read), reads every readable private mapping through
``/proc/<pid>/mem`` (heap, anonymous mappings such as Python's arenas, stacks, writable library
data; not the read-only file mappings, which hold code and fonts), resumes it, and looks for each
secret in each encoding it can have in memory: UTF-8 (bytes, frames, Kivy's text), UTF-16-LE
(GA 467 ID-card frames; Python's own str storage for CJK text), UTF-32-LE (a str with a
character beyond the BMP), GB18030 (receipts for the Chinese-mode printer) and Latin-1 (a Python
str of ASCII digits). What a process has freed but not overwritten counts: that is exactly
what a memory dump of a stolen kiosk would show.
"""

from __future__ import annotations

import os
import signal
from collections.abc import Iterator
from typing import Any

CHUNK = 8 * 1024 * 1024
ENCODINGS = ("utf-8", "utf-16-le", "utf-32-le", "gb18030")


def needles(secrets: dict[str, str]) -> dict[str, set[bytes]]:
    """Each secret in every encoding it may sit in memory as."""
    out: dict[str, set[bytes]] = {}
    for what, value in secrets.items():
        forms = set()
        for enc in ENCODINGS:
            try:
                forms.add(value.encode(enc))
            except UnicodeEncodeError:
                pass
        out[what] = forms
    return out


def regions(pid: int) -> Iterator[tuple[int, int, str]]:
    """(start, end, name) of the mappings of ``pid`` that can hold data the process made."""
    with open(f"/proc/{pid}/maps", encoding="utf-8", errors="replace") as f:
        for line in f:
            parts = line.split(maxsplit=5)
            addr, perms = parts[0], parts[1]
            name = parts[5].strip() if len(parts) > 5 else ""
            if not perms.startswith("r") or name in ("[vvar]", "[vsyscall]", "[vdso]", "[vvar_vclock]"):
                continue
            if name and not name.startswith("[") and "w" not in perms:
                continue  # a read-only file mapping: code, fonts, locale data
            start, end = (int(x, 16) for x in addr.split("-"))
            yield start, end, name or "[anon]"


def scan(pid: int, secrets: dict[str, str]) -> dict[str, Any]:
    """Where each secret occurs in ``pid``'s memory: ``{"found": {what: [region, ...]}, "bytes": n}``."""
    forms = needles(secrets)
    longest = max((len(n) for ns in forms.values() for n in ns), default=1)
    found: dict[str, list[str]] = {}
    scanned = 0
    os.kill(pid, signal.SIGSTOP)
    try:
        fd = os.open(f"/proc/{pid}/mem", os.O_RDONLY)
        try:
            for start, end, name in regions(pid):
                tail = b""
                for at in range(start, end, CHUNK):
                    try:
                        data = os.pread(fd, min(CHUNK, end - at), at)
                    except OSError:
                        break  # a guard page or a mapping that went away
                    scanned += len(data)
                    window = tail + data
                    for what, ns in forms.items():
                        if any(n in window for n in ns):
                            where = f"{name}@{start:#x}"
                            if where not in found.setdefault(what, []):
                                found[what].append(where)
                    tail = data[-(longest - 1):] if longest > 1 else b""
        finally:
            os.close(fd)
    finally:
        os.kill(pid, signal.SIGCONT)
    return {"found": found, "bytes": scanned}
