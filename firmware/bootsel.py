"""Which set of firmware files the board boots: the staged-update pointer (docs/updates.md).

A staged update writes a complete new set under ``sets/<version>/`` (``main.py``, ``firmware/...``
and ``set.txt``: one ``sha256 size path`` line per file) and then switches with one rename of
the pointer file ``fwset.json`` (littlefs is atomic per file, not per set of files):
``{"active": "sets/1.4.0", "good": "", "tries": 0}``, where ``""`` is the files at the root of
the flash (a board flashed the old way). While ``active`` differs from ``good`` the set is on
trial: each boot counts a try, and past LIMIT tries, or if the set is incomplete, the board boots
``good`` again. The running firmware calls :func:`confirm` once it has run stably, which makes
``active`` the good set. Only ``fs`` (hal/fs.DirFs or hal/host.MemoryFs) and json are used:
main.py runs this before any other firmware module is imported.
"""

import json

POINTER = "fwset.json"
PART = "fwset.json.part"
SET_LIST = "set.txt"
LIMIT = 3


def load(fs):
    """The pointer record, or None (no pointer: the root set, as flashed before sets existed)."""
    n = fs.size(POINTER)
    if n <= 0 or n > 512:
        return None
    try:
        rec = json.loads(fs.read(POINTER, 0, n))
    except (OSError, ValueError):
        return None
    if not isinstance(rec, dict):
        return None
    active = rec.get("active")
    good = rec.get("good")
    tries = rec.get("tries")
    if not isinstance(active, str) or not isinstance(good, str) or not isinstance(tries, int):
        return None
    return {"active": active, "good": good, "tries": tries}


def save(fs, rec) -> None:
    """Write the pointer: a part file, then one rename over boot.json."""
    fs.write(PART, 0, json.dumps(rec).encode())
    fs.rename(PART, POINTER)


def entries(fs, set_dir: str):
    """[(sha256, size, path)] from ``set_dir``/set.txt, or None when it is missing or malformed."""
    name = set_dir + "/" + SET_LIST
    n = fs.size(name)
    if n <= 0 or n > 8192:
        return None
    out = []
    try:
        text = fs.read(name, 0, n).decode()
    except (OSError, ValueError):
        return None
    for line in text.split("\n"):
        if not line:
            continue
        parts = line.split(" ")
        if len(parts) != 3 or len(parts[0]) != 64 or not parts[1].isdigit():
            return None
        out.append((parts[0], int(parts[1]), parts[2]))
    return out or None


def complete(fs, set_dir: str) -> bool:
    """Every file of the set is there with its size (hashes were checked at commit)."""
    if set_dir == "":
        return True
    listed = entries(fs, set_dir)
    if listed is None:
        return False
    for _sha, size, path in listed:
        if fs.size(set_dir + "/" + path) != size:
            return False
    return True


def choose(fs, limit: int = LIMIT) -> str:
    """Count this boot and return the set folder to boot ("" for the root set)."""
    rec = load(fs)
    if rec is None:
        return ""
    active = rec["active"]
    good = rec["good"]
    if active != good:
        tries = rec["tries"] + 1
        if tries > limit or not complete(fs, active):
            # Failed to come up LIMIT times (or cut short): back to the last good set, for good.
            rec = {"active": good, "good": good, "tries": 0, "failed": active}
            active = good
        else:
            rec = {"active": active, "good": good, "tries": tries}
        try:
            save(fs, rec)
        except OSError:
            pass  # a worn flash must not stop the board from booting
    if not complete(fs, active):
        return ""
    return active


def confirm(fs) -> bool:
    """The active set runs stably: make it the good one. True if the pointer changed."""
    rec = load(fs)
    if rec is None or rec["active"] == rec["good"]:
        return False
    save(fs, {"active": rec["active"], "good": rec["active"], "tries": 0})
    return True


def switch(fs, part: str, size: int, checked) -> None:
    """The host asks to boot a staged set (``part`` holds {"active": "sets/<version>"}): every
    file of the set must match its set.txt, then the pointer is written (one rename).
    ``checked`` is core/setcheck.py's record: when file_check passed every entry of the set
    since its files last changed, nothing is hashed here; otherwise (a host before 1.5.1 sends
    no file_check) the whole set is, in this one command (over the heap budget:
    docs/benchmarks.md). Raises CommandError: bad_args, no_upload (set list missing), hash (a
    file missing or different). Leaves the heap again on the board (it is loaded for this)."""
    try:
        _switch(fs, part, size, checked)
    finally:
        _leave()


def _switch(fs, part: str, size: int, checked) -> None:
    from firmware.core.relays import CommandError

    try:
        want = json.loads(fs.read(part, 0, size))
    except ValueError:
        want = None
    fs.remove(part)
    active = want.get("active") if isinstance(want, dict) else None
    if not isinstance(active, str) or not (active == "" or active.startswith("sets/")):
        raise CommandError("bad_args")
    if active:
        from firmware.core.paths import check_path

        listing = check_path(active + "/" + SET_LIST)
        if checked is None or checked[0] != active or checked[1] != fs.size(listing):
            from firmware.core.fileinfo import sha256_of

            listed = entries(fs, active)
            if listed is None:
                raise CommandError("no_upload")
            for sha, n, rel in listed:
                path = check_path(active + "/" + rel)
                if fs.size(path) != n or sha256_of(fs, path) != sha:
                    raise CommandError("hash")
    rec = load(fs)
    good = "" if rec is None else (rec["active"] if rec["active"] == rec["good"] else rec["good"])
    save(fs, {"active": active, "good": good, "tries": 0})


def _leave() -> None:
    """Take the switch's code (this module, the path rules, the hashing) out of the board's heap."""
    import sys

    from firmware.core import forget

    forget("paths")
    forget("fileinfo")
    if sys.implementation.name == "micropython":
        sys.modules.pop("firmware.bootsel", None)
        sys.modules["firmware"].__dict__.pop("bootsel", None)


def confirm_staged(sup) -> None:
    """Called once per boot by the supervisor when it has run stably (core/supervisor.py)."""
    import sys

    try:
        rec = load(sup.hal.files)
        if confirm(sup.hal.files) and rec is not None:
            sup.emit("set_confirmed", {"set": rec["active"]})
    except OSError:
        pass
    # Needed once per boot: drop its bytecode from the heap again.
    sys.modules.pop("firmware.bootsel", None)
