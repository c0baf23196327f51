"""The soak's memory-dump check (benchmarks/soak_memory.py) against real processes: it finds a
resident's name and ID number that a process still holds (in each encoding Python or a frame keeps
them in), and nothing in one that never had them."""

from __future__ import annotations

import subprocess
import sys

from benchmarks.soak_memory import scan
from hardware_sim.identities import fictitious

HOLD = """
import sys
name, number = sys.argv[1], sys.argv[2]
held = [name * 1, number + "", name.encode("utf-16-le"), ("x" + name)[1:]]  # str (UCS-2), bytes
print("READY", flush=True)
sys.stdin.readline()
"""


def _child(*args: str) -> subprocess.Popen:
    p = subprocess.Popen([sys.executable, "-c", HOLD, *args], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                         text=True)
    assert p.stdout is not None and p.stdout.readline().strip() == "READY"
    return p


def test_the_scan_finds_what_a_process_holds_and_nothing_in_one_that_never_had_it():
    values = fictitious(424242)["values"]
    secrets = {"name": values["name"], "id_number": values["id_number"]}
    other = fictitious(7)["values"]
    holder, clean = _child(values["name"], values["id_number"]), _child(other["name"], other["id_number"])
    try:
        found = scan(holder.pid, secrets)
        assert set(found["found"]) == {"name", "id_number"} and found["bytes"] > 1_000_000
        assert scan(clean.pid, secrets)["found"] == {}
    finally:
        for p in (holder, clean):
            p.communicate("\n", timeout=10)
