"""The controller's release serving: one fleet-wide rate for all downloads together, HTTP Range.

Two kiosks' real downloaders (kiosk_ui/updater/fetch.py) fetch two objects of a published
release at once from the controller's release routes, served over real HTTP by uvicorn; the
bytes that reached both kiosks are sampled over time and must stay under what the bucket allows
(rate x time + its burst + a piece per download in flight), and each capped download completes
and verifies against the signed manifest.
"""

from __future__ import annotations

import os
import threading
import time

import pytest
from starlette.applications import Starlette

from contract import release as R
from controller import release_registry
from controller.rollout_job import RolloutJob
from controller.rollout_store import RolloutStore
from controller.web import release_files, rollout_api
from controller.web.serve import ConsoleServer
from foundation.ratelimit import TokenBucket
from kiosk_ui.updater.fetch import Fetcher
from provisioning import release_build as B
from tests.support.wheels import make_wheel
from tests.updates.probe import Releases

RATE = 200_000  # bytes/s for every download together


def test_the_bucket_allows_its_rate_and_burst_and_queues_the_rest():
    b = TokenBucket(1000, now=0.0, burst=500)
    assert b.reserve(500, 0.0) == 0.0  # the burst
    assert b.reserve(250, 0.0) == pytest.approx(0.25)  # behind it
    assert b.reserve(250, 0.0) == pytest.approx(0.5)  # a second download queues behind the first
    assert b.reserve(100, 10.0) == 0.0  # idle time refills up to the burst only
    assert b.reserve(500, 10.0) == pytest.approx(0.1)
    with pytest.raises(ValueError):
        TokenBucket(0, now=0.0)


@pytest.mark.parametrize(("header", "size", "want"), [
    (None, 100, None), ("bytes=10-", 100, (10, 100)), ("bytes=10-19", 100, (10, 20)), ("bytes=-30", 100, (70, 100)),
    ("bytes=90-500", 100, (90, 100)), ("bytes=0-0", 1, (0, 1)), ("bytes=1-2,5-6", 100, None), ("items=1-2", 100, None)])
def test_byte_ranges(header, size, want):
    assert release_files.byte_range(header, size) == want


@pytest.mark.parametrize("header", ["bytes=100-", "bytes=5-4"])
def test_unsatisfiable_ranges_are_refused(header):
    with pytest.raises(ValueError):
        release_files.byte_range(header, 100)


@pytest.fixture
def publish(tmp_path):
    """Serve a published release with two ~400 kB objects that do not compress at the given rates
    (fleet-wide, per kiosk); returns (release URL, job, manifest)."""
    servers: list[ConsoleServer] = []
    data = tmp_path / "controller"
    rel = Releases(tmp_path / "rel", int(time.time()))
    wheels = tmp_path / "wheels"
    for name in ("big_a", "big_b"):
        make_wheel(wheels, name, "2.0.0", {f"{name}.py": f"D = {os.urandom(380_000).hex()!r}\n"})
    bundle = tmp_path / "bundle"
    B.build_kiosk(bundle, version="2.0.0", wheels=wheels, now=rel.now)
    B.sign_bundle(bundle, rel.key, "rk-1")
    store = RolloutStore(data)
    release_registry.publish(store, data, bundle, user="rel", now=time.time())

    def serve(rate: float, per_kiosk: float = 0.0):
        job = RolloutJob(data, store, send=None, audit=None, base_url="", clock=time.time,  # type: ignore[arg-type]
                         download_rate=rate, download_rate_per_kiosk=per_kiosk)
        server = ConsoleServer(Starlette(routes=rollout_api.routes(job)), "127.0.0.1:0")
        servers.append(server)
        url = server.start()
        return (f"{url.rstrip('/')}/releases/kiosk/2.0.0", job,
                R.parse_manifest((bundle / R.MANIFEST_FILE).read_bytes()))
    yield serve
    for server in servers:
        server.stop()


@pytest.fixture
def served(publish):
    return publish(RATE)


def test_each_kiosk_has_its_own_bucket_under_the_fleets():
    t = [0.0]
    lim = release_files.DownloadLimit(10_000, 1_000, clock=lambda: t[0], max_kiosks=2)
    assert lim.wait_for(1_000, "10.0.0.1") == 0.0 and lim.wait_for(1_000, "10.0.0.2") == 0.0  # bursts
    assert lim.wait_for(500, "10.0.0.1") == pytest.approx(0.5)  # this kiosk's rate, not the fleet's
    assert lim.wait_for(500, "10.0.0.2") == pytest.approx(0.5)
    assert lim.wait_for(1_000, "10.0.0.3") == 0.0 and sorted(lim.kiosks) == ["10.0.0.2", "10.0.0.3"]  # bounded
    fleet = release_files.DownloadLimit(1_000, 0, clock=lambda: t[0])
    assert fleet.wait_for(1_000, "a") == 0.0 and fleet.wait_for(1_000, "b") == pytest.approx(1.0)  # one bucket


def test_one_kiosk_is_held_to_its_own_rate(publish, tmp_path):
    url, job, man = publish(0, RATE / 2)  # no fleet-wide cap; this kiosk (this address) at 100 kB/s
    entry = max(man.files, key=lambda e: e.size)
    objects = tmp_path / "kiosk" / "objects"
    t0 = time.monotonic()
    R.check_file(entry, Fetcher(url, objects, sleep=time.sleep).ensure(entry))
    assert time.monotonic() - t0 >= (entry.size - RATE / 2 - job.downloads.chunk) / (RATE / 2)


def _have(objects, entry) -> int:
    for p in (objects / entry.sha256, objects / f".{entry.sha256}.part"):
        try:
            return p.stat().st_size
        except FileNotFoundError:
            continue
    return 0


def test_two_downloads_share_the_fleet_rate_and_both_complete_verified(served, tmp_path):
    url, job, man = served
    entries = sorted(man.files, key=lambda e: e.path)
    assert len(entries) == 2 and all(e.size > 300_000 for e in entries)
    kiosks = [tmp_path / "kiosk-a", tmp_path / "kiosk-b"]
    done: list = []
    errors: list = []

    def download(objects, entry):
        try:
            done.append((Fetcher(url, objects, sleep=time.sleep).ensure(entry), entry, time.monotonic()))
        except BaseException as exc:  # noqa: BLE001 - reported below
            errors.append(exc)

    pairs = list(zip(kiosks, entries, strict=True))
    threads = [threading.Thread(target=download, args=(k / "objects", e)) for k, e in pairs]
    samples: list[tuple[float, int, int]] = []
    t0 = time.monotonic()
    for t in threads:
        t.start()
    tick = threading.Event()
    while any(t.is_alive() for t in threads) and time.monotonic() - t0 < 50:
        have = [_have(k / "objects", e) for k, e in pairs]
        # Stamped after the sizes were read: a sampler held up in between (a loaded machine) must
        # not compare bytes of a later moment with the allowance of an earlier one.
        samples.append((time.monotonic() - t0, *have))
        tick.wait(0.05)  # a sampling period, not a synchronisation
    for t in threads:
        t.join(10)
    elapsed = time.monotonic() - t0
    assert not errors and len(done) == 2
    for path, entry, _ in done:
        R.check_file(entry, path)  # complete and verified against the signed manifest
    total = sum(e.size for e in entries)
    # What the bucket allows: its burst (one second) + rate x time + one piece per download in flight.
    allowance = lambda t: RATE + RATE * t + 2 * job.downloads.chunk  # noqa: E731
    over = [(round(t, 2), a + b) for t, a, b in samples if a + b > allowance(t) * 1.05]
    assert not over, f"more than the fleet rate reached the kiosks: {over[:5]}"
    assert elapsed >= (total - allowance(0)) / RATE  # the cap held for the whole transfer
    # Both went at once: when the first finished, the other had a good part of its file too.
    first_end = min(t for _, _, t in done) - t0
    at_first_end = [s for s in samples if s[0] <= first_end][-1]
    assert min(at_first_end[1:]) > 0.25 * min(e.size for e in entries)
    assert job.downloads.bytes_served == total and job.downloads.downloads == 2


def test_a_capped_download_resumes_with_a_range(served, tmp_path):
    url, job, man = served
    entry = man.files[0]
    objects = tmp_path / "kiosk" / "objects"
    first = Fetcher(url, objects, sleep=time.sleep)
    first.ensure(entry)
    whole = (objects / entry.sha256).read_bytes()
    (objects / entry.sha256).unlink()
    (objects / f".{entry.sha256}.part").write_bytes(whole[:100_000])  # a link dropped at 100 kB
    again = Fetcher(url, objects, sleep=time.sleep)
    R.check_file(entry, again.ensure(entry))
    assert again.report.resumed == 1 and again.report.downloaded == entry.size - 100_000
