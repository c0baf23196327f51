"""``file_write``: file data as base64 in JSON, as hosts before firmware 1.4.0 send it.

Kept so that an old host can still flash a new board; a current host sends binary
``file_data`` frames instead (core/files.py). Loaded only when such a host writes.
"""

from firmware.core.relays import CommandError

PART = ".part"


def write(fs, body: dict, path: str) -> dict:
    """Write one chunk ``{"path", "off", "data"}`` (``path`` already checked) into PATH.part."""
    off = body.get("off")
    data = body.get("data")
    if not isinstance(off, int) or off < 0 or not isinstance(data, str):
        raise CommandError("bad_args")
    import binascii

    raw = data.encode()
    try:
        chunk = binascii.a2b_base64(raw)
    except Exception:  # ValueError on the board, a plain Exception in some ports' binascii
        raise CommandError("bad_args")
    # Decoders skip characters outside the alphabet; only canonical base64 is accepted, so
    # a mangled chunk is refused rather than written short. Compared as bytes: no copies.
    if binascii.b2a_base64(chunk, newline=False) != raw:
        raise CommandError("bad_args")
    part = path + PART
    try:
        if off == 0:
            if "/" in path:
                fs.makedirs(path.rsplit("/", 1)[0])
        elif fs.size(part) != off:
            # Chunks arrive in order (the link is stop-and-wait): a gap means the host
            # restarted mid-file, so it must start this file again at offset 0.
            raise CommandError("offset")
        size = fs.write(part, off, chunk)
    except OSError:
        raise CommandError("io")
    return {"size": size}
