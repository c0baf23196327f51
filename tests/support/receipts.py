"""The paper the printer simulator writes: it renders each cut receipt off its device loop, so
the files appear a moment after the print job (and the command that made it) has finished."""

from __future__ import annotations

from pathlib import Path

from tests.support.waiting import wait_until


def wait_receipts(folder: Path, count: int = 1, timeout: float = 15.0) -> list[Path]:
    """The receipt files (``receipt-NNNN.txt``, oldest first) once there are at least ``count``
    and none is missing before the last: each receipt renders on its own thread, so a short one
    can be written before a long one printed ahead of it."""

    def enough() -> list[Path]:
        files = sorted(folder.glob("receipt-*.txt"))
        numbers = [int(f.stem.removeprefix("receipt-")) for f in files]
        return files if len(files) >= count and numbers == list(range(1, len(files) + 1)) else []

    return wait_until(enough, timeout, f"{count} receipt(s) in {folder}", interval=0.05)


def wait_receipt(folder: Path, n: int = 1, timeout: float = 15.0) -> str:
    """The text of the ``n``-th receipt, once it is written."""
    return wait_receipts(folder, n, timeout)[n - 1].read_text(encoding="utf-8")
