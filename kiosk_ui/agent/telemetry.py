"""Host health readings for telemetry, from /proc and /sys (no resident data here)."""

from __future__ import annotations

import os
import shutil
from pathlib import Path


def cpu_times() -> tuple[int, int]:
    """(busy, total) jiffies from /proc/stat."""
    try:
        fields = [int(x) for x in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    except (OSError, ValueError):
        return 0, 0
    idle = fields[3] + (fields[4] if len(fields) > 4 else 0)
    return sum(fields) - idle, sum(fields)


def cpu_percent(prev: tuple[int, int], cur: tuple[int, int]) -> float:
    busy, total = cur[0] - prev[0], cur[1] - prev[1]
    return round(100.0 * busy / total, 1) if total > 0 else 0.0


def memory_percent() -> float | None:
    try:
        info = {}
        for line in Path("/proc/meminfo").read_text().splitlines():
            key, value = line.split(":", 1)
            info[key] = int(value.split()[0])
        return round(100.0 * (1 - info["MemAvailable"] / info["MemTotal"]), 1)
    except (OSError, KeyError, ValueError, ZeroDivisionError):
        return None


def disk_percent(path: str | os.PathLike) -> float | None:
    try:
        u = shutil.disk_usage(path)
    except OSError:
        return None
    return round(100.0 * u.used / u.total, 1)


def soc_temperature() -> float | None:
    """The Raspberry Pi SoC temperature in °C, or None where there is no thermal zone."""
    try:
        return round(int(Path("/sys/class/thermal/thermal_zone0/temp").read_text()) / 1000.0, 1)
    except (OSError, ValueError):
        return None
