"""Waiting on a condition instead of sleeping: the one poll loop the tests and benchmarks share.

``wait_until`` fails the test (AssertionError naming what it waited for) when the condition does
not come in time; ``poll`` only reports, for the few places where "it did not happen" is an
answer too (a refused connection that never acknowledges).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import TypeVar

T = TypeVar("T")


def poll(predicate: Callable[[], T], timeout: float, *, interval: float = 0.02) -> T:
    """Call ``predicate`` until it returns something truthy or ``timeout`` seconds have passed;
    the last value it returned (falsy on timeout)."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value or time.monotonic() > deadline:
            return value
        time.sleep(interval)


def wait_until(predicate: Callable[[], T], timeout: float = 10.0, what: str = "condition", *,
               interval: float = 0.02) -> T:
    """The first truthy value of ``predicate``; AssertionError after ``timeout`` seconds without one.

    ``interval`` is how often to look: longer where looking costs (a subprocess per look)."""
    value = poll(predicate, timeout, interval=interval)
    if not value:
        raise AssertionError(f"timed out after {timeout} s waiting for {what}")
    return value
