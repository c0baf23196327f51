"""The set switch once ``file_check`` passed every entry of the set (core/setcheck.py): nothing
to hash, so only the pointer ``fwset.json`` is written (a part file, one rename), without
loading firmware/bootsel.py. Two ways in: ``set_switch`` (firmware 1.5.2, ``command``), a
command of its own, so no file transfer's Upload is held while it runs (within the heap
budget: docs/benchmarks.md); and the commit of ``fwset.json`` (``switch``, a host before
1.5.2), which hands anything without a complete check (a host before 1.5.1) to
bootsel.switch. Loaded for the switch and dropped right after.
"""

import json

from firmware.core import forget


def command(fs, owner, body) -> dict:
    """set_switch {"set": "sets/<version>"} on the flash ``fs``: the pointer written if
    ``owner.checked`` (the supervisor's file_check record) covers that set's whole set.txt;
    CommandError("unchecked") otherwise, with nothing written and the record kept. A switch
    ends the record, as a commit does."""
    try:
        want = body.get("set")
        checked = getattr(owner, "checked", None)
        # checked[0] passed the path rules at its file_check: a set folder "sets/<version>".
        if checked is None or want != checked[0] or checked[1] != fs.size(want + "/set.txt"):
            from firmware.core.relays import CommandError

            raise CommandError("unchecked")
        owner.checked = None
        try:
            _point(fs, "fwset.json.part", want)
        except OSError:
            fs.remove("fwset.json.part")
            from firmware.core.relays import CommandError

            raise CommandError("io")
        return {"set": want}
    finally:
        forget("setswitch")


def switch(fs, part: str, size: int, checked) -> None:
    """The pointer in ``part`` ({"active": "sets/<version>"}) written if ``checked`` (the
    supervisor's file_check record) covers that set's whole set.txt; bootsel.switch otherwise."""
    try:
        try:
            want = json.loads(fs.read(part, 0, size))
        except ValueError:
            want = None
        active = want.get("active") if isinstance(want, dict) else None
        # checked[0] passed the path rules at its file_check: a set folder "sets/<version>".
        if checked is None or active != checked[0] or checked[1] != fs.size(checked[0] + "/set.txt"):
            from firmware.bootsel import switch as full

            full(fs, part, size, None)
            return
        _point(fs, part, active)  # over the request
    finally:
        forget("setswitch")


def _point(fs, part: str, active) -> None:
    """fwset.json made to point at the set folder ``active`` on trial (written to ``part``, then one rename),
    keeping the set to fall back to as bootsel.switch does."""
    n = fs.size("fwset.json")
    try:
        rec = json.loads(fs.read("fwset.json", 0, n)) if 0 < n <= 512 else None
    except ValueError:
        rec = None
    if not isinstance(rec, dict):
        rec = {}
    was = rec.get("active")
    good = rec.get("good")
    if not (isinstance(was, str) and isinstance(good, str) and isinstance(rec.get("tries"), int)):
        good = ""  # no pointer, or not one bootsel.load takes: the root set
    elif was == good:
        good = was  # as bootsel.switch: the set running for good is the one to fall back to
    fs.write(part, 0, json.dumps({"active": active, "good": good, "tries": 0}).encode())
    fs.rename(part, "fwset.json")
