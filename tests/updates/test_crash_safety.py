"""kill -9 and power cuts at EVERY step of the updater (every write, fsync, rename, symlink,
removal, child process), injected through the Fs shim; then start-up recovery (Switcher.boot, as
kiosk.service runs it before each start). The kiosk must start and run exactly the old or exactly
the new release, never a mix, and the update must still complete afterwards."""

from __future__ import annotations

import json
import shutil
import subprocess

import pytest

from kiosk_ui.updater.fsops import Fs
from kiosk_ui.updater.state import INSTALLED_MARK
from tests.updates.faults import FaultFs, PowerCut


def _use(kiosk, fs) -> None:
    kiosk.installer.fs = fs
    kiosk.sw.fs = fs


def _reset(kiosk, snapshot: bytes, keep: tuple[str, ...]) -> None:
    """Back to 1.0.0 current and committed, with only the releases in ``keep`` installed (without
    re-building them: a venv is built at its final path and stays valid there)."""
    lay = kiosk.lay
    for d in lay.releases.iterdir():
        if d.name not in keep:
            shutil.rmtree(d)
    for p in lay.root.iterdir():
        if p.name.startswith(".") or p.name in ("current", "committed"):
            p.unlink() if (p.is_symlink() or p.is_file()) else shutil.rmtree(p)
    for sha in list(lay.objects.iterdir()):
        if sha.name not in kiosk.kept_objects:
            sha.unlink()
    lay.state_file.write_bytes(snapshot)
    Fs().point(lay.current, lay.target("1.0.0"))
    Fs().point(lay.committed, lay.target("1.0.0"))
    kiosk.sw.fs = kiosk.installer.fs = Fs()
    for version in keep:
        if not lay.installed(version):  # a roll-back's clean-up removed it: build it again
            kiosk.install(version)


def _runs(kiosk) -> str:
    """Start what current names, exactly as kiosk.service would, and say which release runs."""
    lay = kiosk.lay
    version = lay.link_version(lay.current)
    assert version in ("1.0.0", "2.0.0")
    rel = lay.release(version)
    assert (rel / INSTALLED_MARK).read_text().strip() == version
    assert json.loads((rel / "release.json").read_text())["version"] == version
    code = "import os, kiosk_probe.app as a, probe_dep; print(a.VERSION, os.path.realpath(a.__file__))"
    out = subprocess.run([str(lay.current / "venv" / "bin" / "python"), "-c", code], capture_output=True,
                         text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    ran, where = out.stdout.split()
    assert ran == version and f"/releases/{version}/venv/" in where
    return version


def _update(kiosk) -> None:
    kiosk.install("2.0.0")
    kiosk.sw.switch("2.0.0")
    kiosk.sw.commit()


def _rollback(kiosk) -> None:
    kiosk.sw.switch("2.0.0")
    kiosk.sw.boot()
    kiosk.sw.rollback("crashed: test")


@pytest.mark.parametrize("sequence,mode", [(_update, "kill"), (_update, "power"), (_rollback, "kill"),
                                           (_rollback, "power")])
def test_a_cut_at_every_step_leaves_exactly_old_or_new(kiosk, mode, sequence):
    """_update: install, switch, commit. _rollback: switch, a start on trial, roll back (2.0.0 is
    already installed, so every step of the roll-back path is cut without re-running pip)."""
    keep = ("1.0.0",) if sequence is _update else ("1.0.0", "2.0.0")
    if sequence is _rollback:
        kiosk.install("2.0.0")
    kiosk.kept_objects = {p.name for p in kiosk.lay.objects.iterdir()}
    snapshot = kiosk.lay.state_file.read_bytes()
    counting = FaultFs(kiosk.lay.root)
    _use(kiosk, counting)
    sequence(kiosk)
    total = len(counting.steps)
    assert total > (20 if sequence is _update else 10), counting.steps
    seen = set()
    for n in range(1, total + 1):
        _reset(kiosk, snapshot, keep)
        _use(kiosk, FaultFs(kiosk.lay.root, fail_at=n, mode=mode))
        with pytest.raises(PowerCut):
            sequence(kiosk)
        _use(kiosk, Fs())
        kiosk.sw.boot()  # the next start of the kiosk
        seen.add(_runs(kiosk))
        st = kiosk.sw.state()
        if st.trial is not None:
            assert kiosk.sw.current() == st.trial.version
        else:
            assert kiosk.sw.current() == kiosk.sw.committed()
        if mode == "power":
            continue  # the kill runs already prove that recovery leaves the update completable
        # Recovery left nothing that blocks the update: finish it now (a new trial if needed).
        if st.trial is None and "2.0.0" not in st.bad and kiosk.sw.current() == "1.0.0":
            kiosk.install("2.0.0")
            assert kiosk.sw.switch("2.0.0").status == "switched"
        if kiosk.sw.state().trial is not None and sequence is _update:
            kiosk.sw.commit()
            assert _runs(kiosk) == "2.0.0"
    assert seen == {"1.0.0", "2.0.0"}
