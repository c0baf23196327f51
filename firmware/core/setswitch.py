"""The set switch (the commit of ``fwset.json``) once ``file_check`` passed every entry of the
set (core/setcheck.py): nothing to hash, so only the pointer is written (a part file, one
rename), without loading firmware/bootsel.py, whose full check (a host before 1.5.1) this
module hands everything else to. Loaded for the switch by core/upload.py and dropped right
after: the switch's heap is the smaller for it (docs/benchmarks.md).
"""

import json

from firmware.core import forget


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
        fs.write(part, 0, json.dumps({"active": active, "good": good, "tries": 0}).encode())  # over the request
        fs.rename(part, "fwset.json")
    finally:
        forget("setswitch")
