"""The one file being received by binary ``file_data`` frames (firmware 1.4.0), and its commit.

While a file is open, this small module and its ``Upload`` are all the file-transfer code in
the board's heap: the supervisor hands each chunk straight to it (core/supervisor.py), and the
commit of this file too, which needs nothing else: the path was checked at ``file_open`` (the
part file's name is that path plus ``.part``) and the SHA-256 computed as the chunks came.
Every other file command loads its code (core/paths.py for file_open, core/fileinfo.py for
file_info, core/files.py for the rest), which drops itself (and this module, once no file is
open) again right after.
"""

from firmware.core import forget
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
        return self.put(off, payload[4:]).to_bytes(4, "big")

    def put(self, off: int, chunk) -> int:
        """Write and hash ``chunk`` at ``off`` (a file_data chunk, or an old host's file_write:
        core/files_b64.py); returns the bytes received so far."""
        if off != self.off:
            # Stop-and-wait delivers chunks in order: a gap means the host lost its place and
            # starts the file again (file_open, or file_write at offset 0).
            raise CommandError("offset")
        try:
            self.fs.write(self.part, off, chunk)  # offset 0 creates it, or truncates a stale one
        except OSError:
            raise CommandError("io")
        self.hash.update(chunk)
        self.off = off + len(chunk)
        return self.off

    def commit(self, sup, mtype: int, body):
        """file_commit ``body`` ({"path", "sha256"}) while this upload is the supervisor
        ``sup``'s: rename the part file over the path if the streamed hash is the one wanted;
        a wrong hash (or a failed rename) removes it and replaces nothing; the set pointer
        ``fwset.json`` goes to the set switch (core/setswitch.py). Anything else (another path,
        a malformed request) takes the long way through core/files.py, which checks and
        refuses. A commit ends file_check's record (core/setcheck.py): a file changes here.
        Either way the upload ends (and this module leaves the heap) unless the long way keeps
        it."""
        fs = self.fs
        path = body.get("path")
        want = body.get("sha256")
        part = self.part
        size = self.off
        if (not isinstance(path, str) or len(part) != len(path) + 5 or not part.startswith(path)
                or not isinstance(want, str) or len(want) != 64
                or (size and fs.size(part) != size)):
            from firmware.core.files import command

            return command(sup, mtype, body)
        sup.upload = None
        checked = getattr(sup, "checked", None)  # core/setcheck.py's record: no slot on sup until it runs
        if checked is not None:
            sup.checked = None  # a file of a staged set may change: its checks are void (core/setcheck.py)
        try:
            got = self.hash.digest().hex()
            if got != want and got != want.lower():  # lower() only for a host that sends upper case
                fs.remove(part)
                raise CommandError("hash")
            try:
                if not size:
                    fs.write(part, 0, b"")  # an empty file: no chunk created its part file
                if path == "fwset.json":  # the set switch: the pointer, once the set passed
                    from firmware.core.setswitch import switch

                    switch(fs, part, size, checked)
                else:
                    fs.rename(part, path)
            except OSError:
                fs.remove(part)
                raise CommandError("io")
            return {"size": size, "sha256": got}
        finally:
            forget("upload")
