"""Release several calls at one moment, each on a thread of its own: the races the tests provoke
(instances starting together, tickets taken through two controllers, pieces uploaded twice)."""

from __future__ import annotations

import threading
from collections.abc import Callable, Sequence
from typing import Any


def at_once(fn: Callable[[Any], Any], args: Sequence[Any], *, timeout: float = 30.0,
            prepare: Callable[[Any], Any] | None = None) -> list[Any]:
    """``fn(arg)`` for every arg, all started together at a barrier; each call's result, or the
    exception it raised, in the order of ``args`` (every failure is reported, not only the first).
    ``prepare(arg)`` runs on the call's thread before the barrier (opening its connection, so the
    calls themselves start together) and ``fn`` gets what it returned."""
    out: list[Any] = [None] * len(args)
    start = threading.Barrier(len(args))

    def one(i: int) -> None:
        try:
            arg = args[i] if prepare is None else prepare(args[i])
            start.wait(10)
            out[i] = fn(arg)
        except BaseException as exc:  # noqa: BLE001 - handed back to the test
            out[i] = exc

    threads = [threading.Thread(target=one, args=(i,)) for i in range(len(args))]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout)
    return out


def failures(outcomes: list[Any]) -> list[BaseException]:
    return [o for o in outcomes if isinstance(o, BaseException)]
