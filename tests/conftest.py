"""Fixtures shared by every part's tests: a private broker, simulated devices, artifacts folder."""

from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path

import pytest

from tests.support.broker import Mosquitto
from tests.support.postgres import PostgresCluster
from tests.support.processes import REPO, Proc, start_sim
from tests.support.xvfb import Xvfb

ARTIFACTS = Path(os.environ.get("KIOSK_TEST_ARTIFACTS", REPO / "test-artifacts"))

# Tests that take a minute or more on 2 cores. With several workers (scripts/test runs
# pytest-xdist) they are handed out first, so the long ones overlap instead of ending the run.
LONG_FIRST = (
    "tests/soak/test_soak_smoke.py",
    "tests/kiosk/test_ui_layout.py",
    "tests/kiosk/test_ui_services.py",
    "tests/updates/test_crash_safety.py",
    "tests/kiosk/test_ui_screens.py",
    "tests/demo/test_operators_day.py",
    "tests/scale/test_controller_downtime.py",
    "tests/skeleton/test_demo.py",
)


# How long a browser assertion (Playwright's ``expect``) waits for the page to get there. Its own
# default is 5 s whatever ``set_default_timeout`` says (that covers actions and navigation only),
# and a live console update crosses the broker, the controller's batch and its poller first: too
# tight on a loaded 2-core CI machine.
BROWSER_EXPECT_MS = 15_000


def pytest_configure(config):
    from playwright.sync_api import expect

    expect.set_options(timeout=BROWSER_EXPECT_MS)


def pytest_collection_modifyitems(config, items):
    """Hand the long tests out first, each followed by a short one: xdist gives every worker its
    first two tests at once (scripts/test passes --maxschedchunk 1), so this puts one long test on
    each worker instead of several on the first. Which tests run is unchanged."""
    def rank(item) -> int:
        path = item.nodeid.split("::", 1)[0]
        return LONG_FIRST.index(path) if path in LONG_FIRST else len(LONG_FIRST)

    long = sorted((i for i in items if rank(i) < len(LONG_FIRST)), key=rank)
    short = [i for i in items if rank(i) == len(LONG_FIRST)]
    paired = [t for pair in zip(long, short, strict=False) for t in pair]
    items[:] = paired + long[len(short):] + short[len(long):]


@pytest.fixture(scope="session", autouse=True)
def display():
    """A display for Kivy and screenshots: the one given (xvfb-run), else a private Xvfb."""
    if os.environ.get("DISPLAY"):
        yield os.environ["DISPLAY"]
        return
    xvfb = Xvfb()
    os.environ["DISPLAY"] = xvfb.start()
    yield os.environ["DISPLAY"]
    xvfb.stop()
    del os.environ["DISPLAY"]


@pytest.fixture
def broker(tmp_path):
    """A private Mosquitto on a free loopback port (function scope: each test starts clean)."""
    b = Mosquitto(tmp_path / "broker").start()
    yield b
    b.stop()


@pytest.fixture(scope="session")
def postgres_cluster():
    """A private PostgreSQL cluster for the whole session (started only by tests that ask for it).
    Its folder is outside pytest's root-only temporary tree: the ``postgres`` user must enter it."""
    folder = Path(tempfile.mkdtemp(prefix="kiosk-pg-"))
    cluster = PostgresCluster(folder).start()
    yield cluster
    cluster.stop()
    shutil.rmtree(folder, ignore_errors=True)


@pytest.fixture
def postgres_url(postgres_cluster, request):
    """A fresh, empty database on the session's cluster for one test."""
    return postgres_cluster.create_database(f"t{abs(hash(request.node.nodeid)):x}"[:40])


BACKENDS = ("sqlite", "postgresql")


@pytest.fixture
def backend():
    """The fleet database's backend for one test: SQLite unless the test module runs on both
    (``pytestmark = pytest.mark.parametrize("backend", BACKENDS)``)."""
    return "sqlite"


@pytest.fixture
def fleet_database(backend, request) -> str:
    """The controller's ``database`` setting for ``backend``: "" (the SQLite file in the data
    folder) or the URL of a fresh database on the session's PostgreSQL cluster."""
    return request.getfixturevalue("postgres_url") if backend == "postgresql" else ""


@pytest.fixture
def procs():
    """Collects started processes and stops every one after the test."""
    started: list[Proc] = []
    yield started
    for p in reversed(started):
        p.stop()


@pytest.fixture
def sim(tmp_path, procs):
    """``sim("printer", out=...)`` starts a simulator on a real pseudo-terminal; returns (proc, path)."""

    def start(device: str, **kwargs):
        link = tmp_path / f"{device}.tty"
        p = start_sim(device, link, **kwargs)
        procs.append(p)
        return p, link

    return start


@pytest.fixture(scope="session")
def artifacts() -> Path:
    """Folder for screenshots and receipts the tests save for people to look at."""
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    return ARTIFACTS
