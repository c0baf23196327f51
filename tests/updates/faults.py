"""The fault-injection shim: an Fs that dies at step N, as kill -9 or a power cut would.

``kill``: every step before N happened and stays. ``power``: in addition, whatever was written
and not yet made durable is lost: a file modified since the last ``sync`` whose inode was not
fsynced afterwards is cut to zero bytes (what ext4 leaves after a power cut). After the cut the
shim refuses every further step, so no clean-up handler of the updater can run either.
"""

from __future__ import annotations

import os
import time
from pathlib import Path

from kiosk_ui.updater.fsops import Fs


class PowerCut(BaseException):
    """Not an Exception: nothing in the updater may catch it, as nothing runs after kill -9."""


class FaultFs(Fs):
    def __init__(self, root: Path, fail_at: int | None = None, mode: str = "kill") -> None:
        self.root, self.fail_at, self.mode = root, fail_at, mode
        self.steps: list[tuple[str, str]] = []
        self.dead = False
        self.synced_ns = time.time_ns()
        self.fsynced: dict[int, int] = {}  # inode -> mtime_ns when fsynced

    def step(self, what: str, path) -> None:
        if self.dead:
            raise PowerCut(f"after step {self.fail_at}")
        self.steps.append((what, str(path)))
        if self.fail_at is not None and len(self.steps) == self.fail_at:
            self.dead = True
            if self.mode == "power":
                self._lose_unsynced()
            raise PowerCut(f"at step {self.fail_at}: {what} {path}")

    def fsync(self, path: Path) -> None:
        super().fsync(path)
        st = os.stat(path)
        self.fsynced[st.st_ino] = st.st_mtime_ns

    def sync(self) -> None:
        super().sync()
        self.synced_ns = time.time_ns()
        self.fsynced.clear()

    def _lose_unsynced(self) -> None:
        for dirpath, _dirs, files in os.walk(self.root):
            for name in files:
                p = os.path.join(dirpath, name)
                st = os.lstat(p)
                if os.path.islink(p) or st.st_mtime_ns <= self.synced_ns:
                    continue
                if self.fsynced.get(st.st_ino) == st.st_mtime_ns:
                    continue
                os.truncate(p, 0)
