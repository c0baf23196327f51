"""Serving the published release files to kiosks: HTTP Range (a dropped download resumes), a
fleet-wide download rate and the bytes served.

Every download of every kiosk takes its bytes from one token bucket
(:class:`foundation.ratelimit.TokenBucket`, ``release_download_rate`` bytes/s in the controller
config, 0 = unlimited), so a roll-out cannot saturate the server's uplink however many kiosks
download at once; each kiosk also caps its own rate (``kiosk-updater install --rate``, for a
site's 4G link). The bytes are counted for ``/metrics``.
"""

from __future__ import annotations

import asyncio
import re
import time
from collections.abc import AsyncIterator, Callable
from pathlib import Path

from starlette.requests import Request
from starlette.responses import Response, StreamingResponse

from foundation.ratelimit import TokenBucket

MAX_CHUNK = 64 * 1024
_RANGE = re.compile(r"^bytes=(\d*)-(\d*)$")


class DownloadLimit:
    """The fleet-wide bucket and the counters of what was served; ``rate`` 0 or less: unlimited."""

    def __init__(self, rate: float = 0.0, *, clock: Callable[[], float] = time.monotonic) -> None:
        self.clock = clock
        self.bucket = TokenBucket(rate, now=clock()) if rate > 0 else None
        # Small pieces at a low rate, so the bytes flow evenly rather than in second-long bursts.
        self.chunk = MAX_CHUNK if rate <= 0 else int(max(4096, min(MAX_CHUNK, rate / 8)))
        self.bytes_served = 0
        self.downloads = 0

    async def take(self, n: int) -> None:
        if self.bucket is not None:
            wait = self.bucket.reserve(n, self.clock())
            if wait > 0:
                await asyncio.sleep(wait)


def byte_range(header: str | None, size: int) -> tuple[int, int] | None:
    """``(start, end)`` (end exclusive) of a single ``Range: bytes=...`` header; None: the whole file.
    Raises ValueError when the range cannot be satisfied (416)."""
    if not header:
        return None
    m = _RANGE.match(header.strip())
    if not m or m.groups() == ("", ""):
        return None  # several ranges or another unit: RFC 9110 lets a server answer the whole file
    first, last = m.groups()
    if first == "":  # the last N bytes
        start, end = max(0, size - int(last)), size
    else:
        start, end = int(first), min(size, int(last) + 1) if last else size
    if start >= size or start >= end:
        raise ValueError(f"bytes {first}-{last} of a file of {size}")
    return start, end


def serve(path: Path, request: Request, limit: DownloadLimit, media_type: str) -> Response:
    size = path.stat().st_size
    try:
        rng = byte_range(request.headers.get("range"), size)
    except ValueError:
        return Response(status_code=416, headers={"content-range": f"bytes */{size}"})
    start, end = rng or (0, size)
    headers = {"accept-ranges": "bytes", "content-length": str(end - start), "cache-control": "no-cache"}
    if rng:
        headers["content-range"] = f"bytes {start}-{end - 1}/{size}"
    limit.downloads += 1

    async def body() -> AsyncIterator[bytes]:
        with path.open("rb") as fh:
            fh.seek(start)
            left = end - start
            while left > 0:
                n = min(limit.chunk, left)
                await limit.take(n)
                block = fh.read(n)
                if not block:
                    return  # the file shrank under us: the kiosk sees a short body and resumes
                yield block
                limit.bytes_served += len(block)
                left -= len(block)

    return StreamingResponse(body(), status_code=206 if rng else 200, headers=headers, media_type=media_type)
