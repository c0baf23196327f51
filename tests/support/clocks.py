"""Clocks for tests whose result depends on the local day (queue tickets, reports).

A ticket is "today's" by the fleet's local date, so a test that takes tickets ten minutes before
calling them fails just after local midnight if it reads the wall clock. :func:`midday_clock` runs
at real speed from 12:00 today in the fleet's zone, far from either midnight.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from datetime import datetime

from controller.fleet_clock import FleetClock


def midday_clock(zone: FleetClock | None = None, *, wall: Callable[[], float] = time.time) -> Callable[[], float]:
    """A clock that reads 12:00 of the current local day in ``zone`` (the fleet default) now and
    then advances with ``wall``."""
    zone = zone or FleetClock()
    start = wall()
    midday = datetime.combine(zone.day(start), datetime.min.time().replace(hour=12), zone.tz).timestamp()
    return lambda: midday + (wall() - start)
