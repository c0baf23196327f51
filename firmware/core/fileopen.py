"""``file_open``: the start of a file that binary ``file_data`` chunks follow (firmware 1.4.0).

The supervisor loads this module and the path rules (core/paths.py) for ``file_open`` and
drops both right after (core.forget). It checks the path, makes its folders and leaves the
part file's name as the supervisor's upload; the Upload itself (core/upload.py) is made by the
first chunk, so neither its code nor its hash is in this command's heap.
"""

from firmware.core import forget


def command(sup, mtype: int, body):
    """file_open for the supervisor ``sup``: the file's part file name becomes its upload (the
    Upload itself, core/upload.py, is made by the first chunk: not even that code is in this
    command's heap); then this module leaves the heap again. set_switch (type 15) is routed
    through here to core/setswitch.py, without the path rules."""
    try:
        if mtype == 15:
            from firmware.core.setswitch import command

            return command(sup.hal.files, sup, body)
        from firmware.core.paths import CHUNK, check_path

        sup.upload = None
        sup.upload = begin(sup.hal.files, check_path(body.get("path")))
        return {"chunk": CHUNK}  # the path is the host's own: not echoed (a reply is 4 buffers on the heap)
    finally:
        forget("fileopen")
        forget("paths")


def begin(fs, path: str) -> str:
    """Make the folders of ``path`` (already checked); returns its part file's name, where the
    file_data chunks go from offset 0. The first chunk creates the part file (and truncates one
    an earlier transfer left); the commit of an empty file creates it empty."""
    cut = path.rfind("/")
    if cut > 0:
        fs.makedirs(path[:cut])  # one slice, not rsplit's list and two strings
    from firmware.core.paths import PART

    return path + PART
