"""Downloading a release over HTTPS: resume after a dropped link, fetch only what is missing.

Files are content-addressed (``BASE/objects/<sha256>``), so a kiosk asks only for the objects it
does not have yet; a one-module change costs one wheel, not the bundle. A broken transfer keeps
its ``.part`` file and continues with an HTTP ``Range`` request; a server that ignores the range
(200 instead of 206) restarts the file from zero. Every object is checked against the signed
manifest before it is renamed into place, so ``objects/`` holds only verified bytes. The rate
limiter caps this kiosk's share of a site's link; time and sleep are parameters.
"""

from __future__ import annotations

import errno
import http.client
import logging
import ssl
import urllib.error
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from contract import release as R
from foundation.backoff import Backoff
from foundation.errors import TransportError
from foundation.ratelimit import TokenBucket
from kiosk_ui.updater.fsops import Fs
from kiosk_ui.updater.state import UpdateError

log = logging.getLogger(__name__)
CHUNK = 16 * 1024


class RateLimiter:
    """This kiosk's download rate in bytes per second (None: unlimited), as a token bucket."""

    def __init__(self, bytes_per_s: float | None, *, clock: Callable[[], float], sleep: Callable[[float], None],
                 burst: float | None = None) -> None:
        self.clock, self.sleep = clock, sleep
        self.bucket = TokenBucket(bytes_per_s, now=clock(), burst=burst) if bytes_per_s else None

    def take(self, n: int) -> None:
        if self.bucket is not None:
            wait = self.bucket.reserve(n, self.clock())
            if wait > 0:
                self.sleep(wait)


@dataclass
class FetchReport:
    downloaded: int = 0       # bytes that came over the network
    reused: int = 0           # bytes of objects already on the kiosk
    resumed: int = 0          # transfers continued with a Range request
    objects: int = 0          # objects fetched


class Fetcher:
    def __init__(self, base_url: str, objects_dir: Path, *, fs: Fs | None = None,
                 context: ssl.SSLContext | None = None, limiter: RateLimiter | None = None,
                 timeout: float = 30.0, attempts: int = 6, sleep: Callable[[float], None],
                 backoff: Backoff | None = None) -> None:
        self.base = base_url.rstrip("/")
        self.objects = objects_dir
        self.fs = fs or Fs()
        self.context = context
        self.limiter = limiter
        self.timeout = timeout
        self.attempts = attempts
        self.sleep = sleep
        self.backoff = backoff or Backoff(base=1.0, cap=30.0)
        self.report = FetchReport()

    def manifest(self) -> bytes:
        """The bundle's manifest bytes (verified by the caller before anything is written)."""
        try:
            with self._open(f"{self.base}/{R.MANIFEST_FILE}", {}) as resp:
                data = resp.read(R.MAX_MANIFEST_BYTES + 1)
        except (OSError, http.client.HTTPException) as exc:
            raise TransportError(f"cannot fetch the manifest from {self.base}: {exc}") from None
        return data

    def _open(self, url: str, headers: dict[str, str]):
        req = urllib.request.Request(url, headers=headers)
        return urllib.request.urlopen(req, timeout=self.timeout, context=self.context)

    def ensure(self, entry: R.FileEntry) -> Path:
        """The verified object for ``entry``, downloading (and resuming) only if it is missing."""
        dst = self.objects / entry.sha256
        if dst.exists():
            try:
                R.check_file(entry, dst)
                self.report.reused += entry.size
                return dst
            except R.ReleaseRejected:
                self.fs.remove(dst)  # damaged on disk: fetch it again
        self.fs.mkdir(self.objects)
        part = dst.with_name(f".{entry.sha256}.part")
        self.backoff.reset()
        for attempt in range(1, self.attempts + 1):
            try:
                self._transfer(entry, part)
                break
            except (OSError, http.client.HTTPException) as exc:
                if isinstance(exc, OSError) and exc.errno == errno.ENOSPC:
                    self.fs.remove(part)
                    raise UpdateError("disk_full", f"the disk filled up while downloading {entry.path}") from None
                if isinstance(exc, urllib.error.HTTPError) and exc.code in (403, 404, 410):
                    raise UpdateError("not_on_server", f"{entry.path}: HTTP {exc.code}") from None
                if attempt == self.attempts:
                    raise TransportError(f"{entry.path}: download failed {attempt} times, last: {exc}") from None
                log.info("download interrupted, resuming", extra={"fields": {"path": entry.path, "error": str(exc)}})
                self.sleep(self.backoff.next_delay())
        try:
            R.check_file(entry, part)
        except R.ReleaseRejected:
            self.fs.remove(part)
            raise
        self.fs.fsync(part)
        self.fs.replace(part, dst)
        self.report.objects += 1
        return dst

    def _transfer(self, entry: R.FileEntry, part: Path) -> None:
        have = part.stat().st_size if part.exists() else 0
        if have > entry.size:
            part.unlink()
            have = 0
        if have == entry.size:
            return
        headers = {"Range": f"bytes={have}-"} if have else {}
        with self._open(f"{self.base}/{R.OBJECTS_DIR}/{entry.sha256}", headers) as resp:
            if have and resp.status == 206:
                if not (resp.headers.get("Content-Range") or "").startswith(f"bytes {have}-"):
                    raise http.client.HTTPException("server answered a different range")
                self.report.resumed += 1
                mode = "ab"
            else:
                mode = "wb"  # no range support: start the file again
                have = 0
            with open(part, mode) as out:
                while have < entry.size:
                    block = resp.read(min(CHUNK, entry.size - have))
                    if not block:
                        raise http.client.IncompleteRead(b"", entry.size - have)
                    if self.limiter:
                        self.limiter.take(len(block))
                    out.write(block)
                    have += len(block)
                    self.report.downloaded += len(block)


def from_folder(bundle: Path, objects: Path, *, fs: Fs | None = None) -> Callable[[R.FileEntry], Path]:
    """``ensure`` for a bundle folder on local media (a technician's USB stick): copy, check, rename."""
    fs = fs or Fs()

    def ensure(entry: R.FileEntry) -> Path:
        dst = objects / entry.sha256
        if dst.exists():
            R.check_file(entry, dst)
            return dst
        src = R.object_path(bundle, entry.sha256)
        R.check_file(entry, src)
        fs.mkdir(objects)
        part = dst.with_name(f".{entry.sha256}.part")
        fs.write_new(part, src.read_bytes())
        R.check_file(entry, part)  # what landed on this disk, not only what the stick holds
        fs.fsync(part)
        fs.replace(part, dst)
        return dst

    return ensure
