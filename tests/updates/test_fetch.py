"""Downloads: resume after a dropped link (HTTP Range), fetch only changed objects, rate limit,
refuse a bad object; against a real local HTTP server."""

from __future__ import annotations

import pytest

from contract import release as R
from kiosk_ui.updater.fetch import Fetcher, RateLimiter
from kiosk_ui.updater.state import UpdateError
from tests.support.bundle_server import BundleServer


def _manifest(bundle) -> R.Manifest:
    return R.parse_manifest((bundle / R.MANIFEST_FILE).read_bytes())


def _fetch_all(url, objects, **kw) -> Fetcher:
    f = Fetcher(url, objects, sleep=lambda s: None, **kw)
    for entry in R.parse_manifest(f.manifest()).files:
        f.ensure(entry)
    return f


def test_dropped_link_resumes_with_range_and_downloads_each_byte_once(releases, tmp_path):
    bundle = releases.base / "bundle-1.0.0"
    man = _manifest(bundle)
    big = max(man.files, key=lambda e: e.size)
    with BundleServer(bundle) as srv:
        srv.cut_after = 5000
        f = Fetcher(srv.url, tmp_path / "objects", sleep=lambda s: None)
        f.ensure(big)
    R.check_file(big, tmp_path / "objects" / big.sha256)
    assert srv.requests == [(f"/objects/{big.sha256}", None), (f"/objects/{big.sha256}", "bytes=5000-")]
    assert f.report.downloaded == big.size and f.report.resumed == 1


def test_server_without_range_support_restarts_the_file(releases, tmp_path):
    bundle = releases.base / "bundle-1.0.0"
    big = max(_manifest(bundle).files, key=lambda e: e.size)
    with BundleServer(bundle) as srv:
        srv.cut_after, srv.ignore_range = 3000, True
        Fetcher(srv.url, tmp_path / "objects", sleep=lambda s: None).ensure(big)
    R.check_file(big, tmp_path / "objects" / big.sha256)


def test_only_changed_objects_are_fetched(releases, tmp_path):
    objects = tmp_path / "objects"
    with BundleServer(releases.base / "bundle-1.0.0") as srv:
        first = _fetch_all(srv.url, objects)
    with BundleServer(releases.base / "bundle-2.0.0") as srv:
        second = _fetch_all(srv.url, objects)
    full = _manifest(releases.base / "bundle-2.0.0").total_size
    assert first.report.downloaded == _manifest(releases.base / "bundle-1.0.0").total_size
    assert second.report.objects == 1 and second.report.downloaded < 0.5 * full
    assert second.report.reused + second.report.downloaded == full


def test_a_corrupted_object_is_refused_and_not_kept(releases, tmp_path):
    src = releases.base / "bundle-1.0.0"
    bundle = tmp_path / "served"
    bundle.mkdir()
    (bundle / "objects").mkdir()
    man = _manifest(src)
    entry = man.files[0]
    data = bytearray(R.object_path(src, entry.sha256).read_bytes())
    data[100] ^= 1
    (bundle / "objects" / entry.sha256).write_bytes(bytes(data))
    with BundleServer(bundle) as srv, pytest.raises(R.ReleaseRejected, match="hash_mismatch"):
        Fetcher(srv.url, tmp_path / "objects", sleep=lambda s: None).ensure(entry)
    assert list((tmp_path / "objects").iterdir()) == []
    with BundleServer(tmp_path / "empty") as srv, pytest.raises(UpdateError, match="not_on_server"):
        Fetcher(srv.url, tmp_path / "objects", sleep=lambda s: None).ensure(entry)


def test_rate_limiter_sleeps_for_the_excess():
    t = [0.0]
    slept = []

    def sleep(s):
        slept.append(s)
        t[0] += s

    lim = RateLimiter(1000, clock=lambda: t[0], sleep=sleep)
    for _ in range(10):
        lim.take(500)
    assert sum(slept) == pytest.approx(4.0)  # 5000 bytes at 1000 B/s after a 1000-byte burst


def test_rate_limited_download_takes_the_time_it_should(releases, tmp_path):
    bundle = releases.base / "bundle-1.0.0"
    big = max(_manifest(bundle).files, key=lambda e: e.size)
    t = [0.0]

    def sleep(s):
        t[0] += s

    with BundleServer(bundle) as srv:
        f = Fetcher(srv.url, tmp_path / "objects", sleep=sleep,
                    limiter=RateLimiter(2000, clock=lambda: t[0], sleep=sleep))
        f.ensure(big)
    assert t[0] == pytest.approx((big.size - 2000) / 2000, rel=0.01)
