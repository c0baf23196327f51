"""The board's flash as a folder: the filesystem half of the HAL, shared by hal/rp2 and hal/host.

``DirFs(root)`` maps the file-transfer paths (relative, already checked by core/paths.py) and
the host watchdog's history file (core/hostwatch.py) to files under ``root``: ``"/"`` on the
board (littlefs), a folder on disk for the simulator. Only
``open``, ``os.stat``, ``os.rename``, ``os.remove`` and ``os.mkdir``, which MicroPython has.
"""

import os


class DirFs:
    def __init__(self, root: str) -> None:
        self.root = root.rstrip("/")
        self._prefix = self.root + "/"

    def _abs(self, rel: str) -> str:
        return self._prefix + rel  # one new string per call, not two

    def size(self, rel: str) -> int:
        """Size in bytes, or -1 when the file does not exist."""
        try:
            st = os.stat(self._abs(rel))
        except OSError:
            return -1
        if st[0] & 0x4000:
            return -1  # a folder is not a file
        return st[6]

    def open(self, rel: str):
        """The file opened for reading (``readinto``, ``close``); OSError when it is absent."""
        return open(self._abs(rel), "rb")

    def read(self, rel: str, offset: int, n: int) -> bytes:
        with open(self._abs(rel), "rb") as f:
            f.seek(offset)
            return f.read(n)

    def write(self, rel: str, offset: int, data) -> int:
        """Offset 0 creates or truncates; any other offset appends. Returns the new size."""
        with open(self._abs(rel), "wb" if offset == 0 else "ab") as f:
            f.write(data)
            return f.tell()  # the end of the file, without a stat

    def rename(self, src: str, dst: str) -> None:
        # Replaces dst in one step on littlefs and POSIX: a reset never leaves half a file.
        os.rename(self._abs(src), self._abs(dst))

    def remove(self, rel: str) -> None:
        try:
            os.remove(self._abs(rel))
        except OSError:
            pass

    def makedirs(self, rel_dir: str) -> None:
        # This runs inside file_open's heap budget: one string for the whole path, and a slice
        # per parent only when parents are missing (the usual cases, the folder or only it
        # missing, cost no more: every file after the first of a folder finds it there).
        path = self._prefix + rel_dir
        try:
            os.mkdir(path)
            return
        except OSError:
            pass
        try:
            os.stat(path)
            return
        except OSError:
            pass
        i = len(self._prefix)
        while True:
            j = path.find("/", i)
            try:
                os.mkdir(path if j < 0 else path[:j])
            except OSError:
                pass  # exists already; a real failure shows up when the file is opened
            if j < 0:
                return
            i = j + 1
