"""The one file being received by binary ``file_data`` frames (firmware 1.4.0).

While a file is open, this small module and its ``Upload`` are all the file-transfer code in
the board's heap: the supervisor hands each chunk straight to it (core/supervisor.py). Every
other file command loads its code (core/paths.py for file_info and file_open, core/commit.py
for the commit of this file, core/files.py for the rest), which drops itself (and this module,
once no file is open) again right after.
"""

from firmware.core.relays import CommandError

CHUNK = 256  # at most per file_data: link.FILE_CHUNK


class Upload:
    """A file (its path already checked) arriving into ``part``, its part file: ``off`` bytes so
    far, hashed as they came. Only the part file's name is kept: every byte counts here."""

    def __init__(self, fs, part: str) -> None:
        import hashlib

        self.fs = fs
        self.part = part
        self.off = 0
        self.hash = hashlib.sha256()

    def data(self, payload) -> bytes:
        """One file_data payload: offset (4 bytes, big-endian) + 1..CHUNK bytes, a memoryview of
        the receive buffer on the board. Written and hashed from there, never copied. Returns
        the bytes received so far, 4 bytes big-endian."""
        n = len(payload) - 4
        if n < 1 or n > CHUNK:
            raise CommandError("chunk")  # before anything is touched
        off = (payload[0] << 24) | (payload[1] << 16) | (payload[2] << 8) | payload[3]
        if off != self.off:
            # Stop-and-wait delivers chunks in order: a gap means the host lost its place and
            # starts the file again with file_open.
            raise CommandError("offset")
        chunk = payload[4:]
        try:
            self.fs.write(self.part, off, chunk)  # offset 0 creates it, or truncates a stale one
        except OSError:
            raise CommandError("io")
        self.hash.update(chunk)
        self.off = off + n
        return self.off.to_bytes(4, "big")
