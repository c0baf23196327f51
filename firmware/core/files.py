"""File transfer over the link: how ``kiosk-provision flash-firmware`` updates the firmware.

Commands (docs/firmware.md): ``file_info`` (SHA-256 and size of a file, or absent),
``file_open`` (start ``PATH.part``), ``file_data`` (binary: a chunk at an offset, appended to
the part file and hashed as it arrives) and ``file_commit`` (compare the hash with the host's,
then rename the part file over PATH). Hosts from before 1.4.0 send ``file_write`` (base64 in
JSON, firmware/core/files_b64.py) instead of open/data; their commit hashes the part file from
flash. The rename is the only step that touches the live file, so a transfer cut anywhere
before it leaves the old file in place, and a wrong hash replaces nothing. The path rules
are core/paths.py's, the hashing from flash core/fileinfo.py's.

On the board the supervisor loads this module only for what the small modules leave to it
(``file_write``, a commit that is not of the streamed file, the set pointer), and it drops
itself again right after (``command``). ``file_open`` loads core/fileopen.py, ``file_info``
core/fileinfo.py (both with the path rules), and the chunks (``file_data``) and their commit go straight to the open
Upload (core/upload.py). ``FileTransfer`` runs every command, for the tests and the tools.

Staged updates (docs/updates.md) use the same three commands: the new set's files go to
``sets/<version>/`` beside the running set (its ``set.txt`` lists each file's SHA-256 and size,
from the manifest the host verified); ``file_check`` then hashes them one per command
(core/setcheck.py), and committing ``fwset.json`` switches sets: only once every file of the
set matched ``set.txt`` (checked before, or hashed then: firmware/bootsel.py) is the pointer
renamed, so a set with a missing or wrong file is never booted.
"""

from firmware import link as L
from firmware.core.fileinfo import info, sha256_of
from firmware.core.fileopen import begin
from firmware.core.paths import CHUNK, PART, POINTER, check_path
from firmware.core.relays import CommandError

__all__ = ["FileTransfer", "check_path", "sha256_of"]  # where their callers import them from

# The file-transfer code, taken out of the heap after each command (core/upload.py stays while
# a file is open): (package, name, full name).
MODULES = (("firmware.core", "files", "firmware.core.files"),
           ("firmware.core", "files_b64", "firmware.core.files_b64"),
           ("firmware", "bootsel", "firmware.bootsel"),
           ("firmware.core", "fileinfo", "firmware.core.fileinfo"),
           ("firmware.core", "fileopen", "firmware.core.fileopen"),
           ("firmware.core", "paths", "firmware.core.paths"),
           ("firmware.core", "setcheck", "firmware.core.setcheck"),
           ("firmware.core", "setswitch", "firmware.core.setswitch"),
           ("firmware.core", "upload", "firmware.core.upload"))


def command(sup, mtype: int, body):
    """Run a file command for the supervisor ``sup`` (its open Upload is ``sup.upload``; chunks
    of it never come here), then drop the file-transfer code from the heap again."""
    ft = FileTransfer(sup.hal.files)
    ft.upload = sup.upload  # an Upload: the supervisor makes one of an opened file's name first
    ft.checked = getattr(sup, "checked", None)  # the staged set's entries file_check passed (core/setcheck.py)
    try:
        if mtype == L.FILE_INFO:
            return ft.info(body)
        if mtype == L.FILE_OPEN:
            return ft.open(body)
        if mtype == L.FILE_WRITE:
            return ft.write(body)
        if mtype == L.FILE_COMMIT:
            return ft.commit(body)
        if mtype == L.FILE_CHECK:
            return ft.check(body)
        if mtype == 0x0F:  # set_switch (no name in firmware/link.py: see there)
            return ft.switch(body)
        return ft.data(body)
    finally:
        sup.upload = ft.upload
        if ft.checked is not None or getattr(sup, "checked", None) is not None:
            sup.checked = ft.checked  # (no slot on the supervisor until file_check runs)
        drop(ft.upload is not None)


def drop(keep_upload: bool = False) -> None:
    """Unload the file-transfer modules: a module stays in the heap while sys.modules or its
    package refers to it. Collected at once on the board (the WebAssembly port collects at its
    next top-level call). Only on MicroPython: on CPython (the simulator) there is no heap budget,
    and importing the modules again for every file command would only cost time."""
    import gc
    import sys

    if sys.implementation.name != "micropython":
        return
    for pkg, name, full in MODULES:
        if not (keep_upload and name == "upload"):
            sys.modules.pop(full, None)
            sys.modules[pkg].__dict__.pop(name, None)
    gc.collect()


class FileTransfer:
    """The commands against a HAL filesystem (hal/fs.DirFs or hal/host.MemoryFs). ``upload``: the
    file open for file_data (core/upload.py), kept by the supervisor between commands."""

    def __init__(self, fs) -> None:
        self.fs = fs
        self.upload = None
        self.checked = None  # core/setcheck.py's record: cleared by every commit

    def info(self, body: dict) -> dict:
        return info(self.fs, body)

    def open(self, body: dict) -> dict:
        """Start a file (making its folders); file_data chunks into ``PATH.part`` follow from 0."""
        path = check_path(body.get("path"))
        self.upload = None
        from firmware.core.upload import Upload

        self.upload = Upload(self.fs, begin(self.fs, path))
        return {"chunk": CHUNK}

    def data(self, payload) -> bytes:
        if self.upload is None:
            raise CommandError("no_upload")
        return self.upload.data(payload)

    def write(self, body: dict) -> dict:
        """file_write from a host before 1.4.0 (base64 in JSON) into PATH.part, each chunk at
        the part file's size (the board streams them into an Upload instead: core/files_b64.py)."""
        from firmware.core.files_b64 import chunk_of

        self.upload = None
        path = check_path(body.get("path"))
        off, chunk = chunk_of(body)
        part = path + PART
        try:
            if off == 0:
                begin(self.fs, path)
            elif self.fs.size(part) != off:
                # Chunks arrive in order (the link is stop-and-wait): a gap means the host
                # restarted mid-file, so it must start this file again at offset 0.
                raise CommandError("offset")
            return {"size": self.fs.write(part, off, chunk)}
        except OSError:
            raise CommandError("io")

    def check(self, body: dict) -> dict:
        """file_check: the next entry of a staged set's set.txt (core/setcheck.py)."""
        from firmware.core.setcheck import check

        return {"checked": check(self.fs, self, body)}

    def switch(self, body: dict) -> dict:
        """set_switch: the pointer written once file_check passed the whole set (core/setswitch.py)."""
        from firmware.core.setswitch import command

        return command(self.fs, self, body)

    def commit(self, body: dict) -> dict:
        path = check_path(body.get("path"))
        want = body.get("sha256")
        if not isinstance(want, str) or len(want) != 64:
            raise CommandError("bad_args")
        up = self.upload
        self.upload = None
        checked = self.checked
        self.checked = None  # a file of the set may change: its checks are void
        part = path + PART
        try:
            if up is not None and up.part == part and not up.off:
                self.fs.write(part, 0, b"")  # an empty file: no chunk created its part file
            size = self.fs.size(part)
            if size < 0:
                raise CommandError("no_upload")
            if up is not None and up.part == part and up.off == size:
                # What arrived by file_data was hashed as it came: no second read of the flash.
                got = up.hash.digest().hex()
            else:
                got = sha256_of(self.fs, part)  # after file_write (an old host)
            if got != want.lower():
                self.fs.remove(part)
                raise CommandError("hash")
            if path == POINTER:
                # Loaded only here: its code stays out of the heap during the file transfers.
                from firmware.bootsel import switch

                switch(self.fs, part, size, checked)
                return {"size": size, "sha256": got}
            self.fs.rename(part, path)
        except OSError:
            self.fs.remove(part)
            raise CommandError("io")
        return {"size": size, "sha256": got}
