"""Fixtures for update tests: signed test releases and an updater root with release 1.0.0 active."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from contract import release as R
from kiosk_ui.updater.fetch import from_folder
from kiosk_ui.updater.health import HealthPolicy
from kiosk_ui.updater.install import Installer
from kiosk_ui.updater.state import Layout
from kiosk_ui.updater.switch import Switcher
from tests.updates.probe import Releases


@pytest.fixture(scope="session")
def releases(tmp_path_factory) -> Releases:
    rel = Releases(tmp_path_factory.mktemp("releases"), int(time.time()))
    for version, kw in [("1.0.0", {}), ("2.0.0", {}), ("3.0.0", {"crash": True}), ("4.0.0", {"broker": False})]:
        rel.bundle(version, **kw)
    return rel


class Kiosk:
    """An updater root, its installer and switcher (real filesystem, real venvs, real pip)."""

    def __init__(self, root: Path, releases: Releases, policy: HealthPolicy, fs=None) -> None:
        self.lay = Layout(root)
        self.releases = releases
        self.installer = Installer(self.lay, root_key=releases.root.public_key(), clock=time.time, fs=fs)
        self.sw = Switcher(self.lay, clock=time.time, policy=policy, fs=fs)

    def install(self, version: str) -> R.Manifest:
        bundle = self.releases.base / f"bundle-{version}"
        man = self.installer.check((bundle / R.MANIFEST_FILE).read_bytes(), self.sw.current())
        self.installer.install(man, from_folder(bundle, self.lay.objects, fs=self.installer.fs))
        return man


@pytest.fixture
def kiosk(tmp_path, releases) -> Kiosk:
    k = Kiosk(tmp_path / "opt-kiosk", releases, HealthPolicy(window_s=1.5, signal_deadline_s=8.0))
    k.installer.accept_key_list(releases.key_list)
    k.install("1.0.0")
    k.sw.activate_first("1.0.0")
    return k
