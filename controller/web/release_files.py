"""Serving the published release files to kiosks: HTTP Range (a dropped download resumes), a
fleet-wide download rate and the bytes served.

Every download of every kiosk takes its bytes from one token bucket
(:class:`foundation.ratelimit.TokenBucket`, ``release_download_rate`` bytes/s in the controller
config, 0 = unlimited), so a roll-out cannot saturate the server's uplink however many kiosks
download at once, and from its kiosk's own bucket (``release_download_rate_per_kiosk``), so it
cannot saturate a site's 4G link either (``kiosk-updater install --rate`` caps a download on the
kiosk's side too). The bytes are counted for ``/metrics``.
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
    """The fleet-wide bucket, one bucket per downloading address, and the counters of what was
    served. A rate of 0 or less: no limit of that kind."""

    def __init__(self, rate: float = 0.0, per_kiosk: float = 0.0, *, clock: Callable[[], float] = time.monotonic,
                 max_kiosks: int = 30_000) -> None:
        self.clock = clock
        self.bucket = TokenBucket(rate, now=clock()) if rate > 0 else None
        self.per_kiosk = per_kiosk
        self.max_kiosks = max_kiosks
        self.kiosks: dict[str, TokenBucket] = {}
        # Small pieces at a low rate, so the bytes flow evenly rather than in second-long bursts.
        lowest = min((r for r in (rate, per_kiosk) if r > 0), default=0)
        self.chunk = MAX_CHUNK if not lowest else int(max(4096, min(MAX_CHUNK, lowest / 8)))
        self.bytes_served = 0
        self.downloads = 0

    def wait_for(self, n: int, kiosk: str) -> float:
        """Take ``n`` bytes for a download to ``kiosk``; the seconds to wait so that both the
        fleet's and this kiosk's rate hold."""
        now = self.clock()
        wait = self.bucket.reserve(n, now) if self.bucket is not None else 0.0
        if self.per_kiosk > 0:
            mine = self.kiosks.get(kiosk)
            if mine is None:
                if len(self.kiosks) >= self.max_kiosks:  # bounded: forget the longest known
                    self.kiosks.pop(next(iter(self.kiosks)))
                mine = self.kiosks[kiosk] = TokenBucket(self.per_kiosk, now=now)
            wait = max(wait, mine.reserve(n, now))
        return wait

    async def take(self, n: int, kiosk: str) -> None:
        wait = self.wait_for(n, kiosk)
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
    # The kiosk is the downloading address (the proxy's X-Forwarded-For only from trusted proxies,
    # as everywhere in the console): kiosks of a site behind one NAT address share its rate, which
    # is what protects the site's 4G link.
    kiosk = request.client.host if request.client else ""

    async def body() -> AsyncIterator[bytes]:
        with path.open("rb") as fh:
            fh.seek(start)
            left = end - start
            while left > 0:
                n = min(limit.chunk, left)
                await limit.take(n, kiosk)
                block = fh.read(n)
                if not block:
                    return  # the file shrank under us: the kiosk sees a short body and resumes
                yield block
                limit.bytes_served += len(block)
                left -= len(block)

    return StreamingResponse(body(), status_code=206 if rng else 200, headers=headers, media_type=media_type)
