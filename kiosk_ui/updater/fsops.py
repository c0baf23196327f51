"""Every change the updater makes to the disk goes through one ``Fs`` object.

That is the fault-injection seam: a test hands the updater an ``Fs`` that dies at step N (as if
the process were killed with -9 or the power went), for every N, and then checks that start-up
recovery leaves exactly the old or exactly the new release. Each method is one step as the disk
sees it: a write, an fsync, a rename, a symlink, a removal, a child process.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path
from typing import Any


class Fs:
    """The real filesystem. Subclasses count or fail steps; they must call these to do the work."""

    def step(self, what: str, path: Path | str) -> None:
        """Called before every step; the fault-injection shim raises here."""

    def write_new(self, path: Path, data: bytes) -> None:
        """Create ``path`` (a leftover from a killed run is truncated) with ``data``, not yet synced."""
        self.step("write", path)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
        try:
            view = memoryview(data)
            while view:  # os.write may write less than asked (a full disk, a signal): the rest follows
                view = view[os.write(fd, view):]
        finally:
            os.close(fd)

    def append(self, path: Path, data: bytes) -> None:
        self.step("write", path)
        with open(path, "ab") as fh:
            fh.write(data)

    def fsync(self, path: Path) -> None:
        """fsync a file or a directory (a directory's fsync makes its renames durable)."""
        self.step("fsync", path)
        fd = os.open(path, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)

    def replace(self, src: Path, dst: Path) -> None:
        self.step("rename", dst)
        os.replace(src, dst)

    def symlink(self, target: str, path: Path) -> None:
        self.step("symlink", path)
        os.symlink(target, path)

    def mkdir(self, path: Path) -> None:
        self.step("mkdir", path)
        path.mkdir(parents=True, exist_ok=True)

    def remove(self, path: Path) -> None:
        self.step("remove", path)
        if path.is_symlink() or path.is_file():
            path.unlink(missing_ok=True)
        elif path.exists():
            shutil.rmtree(path)

    def sync(self) -> None:
        """Flush everything (what a child process such as pip wrote was never fsynced)."""
        self.step("sync", "/")
        os.sync()

    def run(self, argv: list[str], **kw: Any) -> subprocess.CompletedProcess:
        self.step("run", argv[0])
        return subprocess.run(argv, capture_output=True, text=True, **kw)

    # -- composites: sequences of the steps above ---------------------------------------------

    def write_atomic(self, path: Path, data: bytes) -> None:
        """Temp file, fsync, rename over ``path``, fsync the folder: old or new, never half."""
        tmp = path.with_name(f".{path.name}.tmp")
        self.write_new(tmp, data)
        self.fsync(tmp)
        self.replace(tmp, path)
        self.fsync(path.parent)

    def point(self, link: Path, target: str) -> None:
        """Make ``link`` name ``target`` with one atomic rename (a temp link, then os.replace);
        ``ln -sfn`` unlinks first and leaves a moment with no link at all."""
        tmp = link.with_name(f".{link.name}.new")
        if tmp.is_symlink() or tmp.exists():
            self.remove(tmp)
        self.symlink(target, tmp)
        self.replace(tmp, link)
        self.fsync(link.parent)
