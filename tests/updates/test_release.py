"""Release bundles: the release tool builds and signs, the device's checks (contract/release.py)
refuse every way a bundle or key list can be wrong, before anything is written."""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from contract import release as R
from provisioning import release_build as B
from provisioning import release_cli
from tests.support.wheels import make_wheel

NOW = 1_800_000_000


@pytest.fixture
def keys():
    root, k1, k2 = (Ed25519PrivateKey.generate() for _ in range(3))
    doc = B.build_key_list(root, [("rk-a", R.key_text(k1), ["kiosk", "supervisor"]),
                                  ("rk-b", R.key_text(k2), ["supervisor"])], serial=5, now=NOW)
    return root, k1, k2, R.verify_key_list(json.dumps(doc).encode(), root.public_key(), now=NOW)


@pytest.fixture
def bundle(tmp_path, keys):
    wheels = tmp_path / "wheels"
    make_wheel(wheels, "kiosk_probe", "2.0.0", {"kiosk_probe/__init__.py": "VERSION = '2.0.0'\n"})
    make_wheel(wheels, "helper_dep", "1.0.0", {"helper_dep.py": "X = 1\n"})
    out = tmp_path / "bundle"
    B.build_kiosk(out, version="2.0.0", wheels=wheels, min_from_version="1.0.0", now=NOW)
    B.sign_bundle(out, keys[1], "rk-a")
    return out


def _doc(bundle) -> dict:
    return json.loads((bundle / R.MANIFEST_FILE).read_text())


def test_a_kiosk_bundle_built_from_a_checkout_carries_the_kiosk_extra(tmp_path):
    asked = []

    def pip_wheel(argv, **_kwargs):  # stands in for pip: writes one wheel where it was told to
        asked.append(argv)
        make_wheel(Path(argv[argv.index("--wheel-dir") + 1]), "community_kiosk", "2.0.0", {"k/__init__.py": ""})
        return subprocess.CompletedProcess(argv, 0, "", "")

    B.build_kiosk(tmp_path / "out", version="2.0.0", checkout=tmp_path / "src", now=NOW, run=pip_wheel)
    assert asked[0][-1] == f"{tmp_path / 'src'}[kiosk]"  # Kivy, Pillow and qrcode come with it


def test_signed_bundle_verifies_and_lists_every_wheel(bundle, keys):
    man = B.verify_bundle(bundle, keys[3], now=NOW + 10, component="kiosk", installed="1.2.0")
    assert man.version == "2.0.0"
    assert sorted(f.path for f in man.files) == ["wheels/helper_dep-1.0.0-py3-none-any.whl",
                                                 "wheels/kiosk_probe-2.0.0-py3-none-any.whl"]
    for f in man.files:
        assert R.object_path(bundle, f.sha256).stat().st_size == f.size


@pytest.mark.parametrize("installed,component,now,reason", [
    ("2.0.0", "kiosk", NOW, "not_newer"),         # the same version again
    ("3.1.0", "kiosk", NOW, "not_newer"),         # an old release replayed
    ("0.9.0", "kiosk", NOW, "too_old"),           # below min_from_version
    ("1.0.0", "supervisor", NOW, "wrong_component"),
    ("1.0.0", "kiosk", NOW + 91 * B.DAY, "expired"),
    ("1.0.0", "kiosk", NOW - 3600, "not_yet_valid"),
])
def test_manifest_refusals(bundle, keys, installed, component, now, reason):
    with pytest.raises(R.ReleaseRejected) as exc:
        R.verify_manifest((bundle / R.MANIFEST_FILE).read_bytes(), keys[3], component=component,
                          installed=installed, now=now)
    assert exc.value.reason == reason


def test_a_version_marked_bad_is_never_taken_again(bundle, keys):
    with pytest.raises(R.ReleaseRejected, match="failed on this device"):
        R.verify_manifest((bundle / R.MANIFEST_FILE).read_bytes(), keys[3], component="kiosk",
                          installed="1.0.0", now=NOW, refused=frozenset({"2.0.0"}))


def test_unsigned_wrong_key_and_flipped_byte_are_refused(bundle, keys, tmp_path):
    doc = _doc(bundle)
    unsigned = {k: v for k, v in doc.items() if k != "signature"}
    for body, reason in [
        (unsigned, "not_signed"),
        (R.sign(Ed25519PrivateKey.generate(), unsigned), "bad_signature"),       # right id, wrong key
        (R.sign(keys[2], {**unsigned, "key_id": "rk-b"}), "unknown_key"),       # rk-b may not sign kiosk
        (R.sign(keys[1], {**unsigned, "key_id": "rk-x"}), "unknown_key"),       # not in the list
        ({**doc, "version": "2.0.1"}, "bad_signature"),                          # edited after signing
        ({**doc, "extra": 1}, "bad_manifest"),                                   # unknown field
        ({k: v for k, v in doc.items() if k != "expires"}, "bad_manifest"),      # missing field
    ]:
        with pytest.raises(R.ReleaseRejected) as exc:
            R.verify_manifest(json.dumps(body).encode(), keys[3], component="kiosk", installed="1.0.0", now=NOW)
        assert exc.value.reason == reason, body
    raw = bytearray((bundle / R.MANIFEST_FILE).read_bytes())
    raw[raw.index(b'"size": ') + 8] ^= 0x01  # one digit of a size changes
    with pytest.raises(R.ReleaseRejected) as exc:
        R.verify_manifest(bytes(raw), keys[3], component="kiosk", installed="1.0.0", now=NOW)
    assert exc.value.reason in ("bad_signature", "bad_manifest")


def test_objects_flipped_truncated_or_missing_are_refused(bundle, keys):
    man = R.parse_manifest((bundle / R.MANIFEST_FILE).read_bytes())
    obj = R.object_path(bundle, man.files[0].sha256)
    good = obj.read_bytes()
    obj.write_bytes(bytes([good[0] ^ 0x80]) + good[1:])
    with pytest.raises(R.ReleaseRejected, match="hash_mismatch"):
        B.verify_bundle(bundle, keys[3], now=NOW)
    obj.write_bytes(good[:-1])
    with pytest.raises(R.ReleaseRejected, match="size_mismatch"):
        B.verify_bundle(bundle, keys[3], now=NOW)
    obj.unlink()
    with pytest.raises(R.ReleaseRejected, match="missing_file"):
        B.verify_bundle(bundle, keys[3], now=NOW)
    shutil.rmtree(bundle)
    with pytest.raises(R.ReleaseRejected, match="not a bundle"):
        B.verify_bundle(bundle, keys[3], now=NOW)


def test_manifest_paths_must_stay_inside_the_release(keys):
    for path in ["../etc/passwd", "/abs", "wheels/../../x", ".hidden", "a//b", ""]:
        body = R.make_manifest("kiosk", "1.0.0", {path: {"sha256": "0" * 64, "size": 1}}, min_from_version="0.0.0",
                               created=NOW, expires=NOW + 10, key_id="rk-a")
        with pytest.raises(R.ReleaseRejected, match="bad_manifest"):
            R.parse_manifest(body)


def test_key_list_rotation_removal_and_replay(keys):
    root, k1, k2, trusted = keys
    new = B.build_key_list(root, [("rk-b", R.key_text(k2), ["kiosk", "supervisor"])], serial=6, now=NOW)
    rotated = R.verify_key_list(new, root.public_key(), now=NOW, trusted_serial=trusted.serial)
    assert set(rotated.keys) == {"rk-b"}
    with pytest.raises(R.ReleaseRejected, match="unknown_key"):  # rk-a was removed (compromised)
        rotated.key_for("rk-a", "kiosk")
    with pytest.raises(R.ReleaseRejected, match="key_list_replay"):  # the old list replayed
        R.verify_key_list(trusted.document, root.public_key(), now=NOW, trusted_serial=rotated.serial)
    with pytest.raises(R.ReleaseRejected, match="bad_signature"):  # signed by a release key, not the root
        R.verify_key_list(R.sign(k1, {**new, "serial": 7}), root.public_key(), now=NOW)
    with pytest.raises(R.ReleaseRejected, match="expired"):
        R.verify_key_list(new, root.public_key(), now=NOW + 400 * B.DAY)
    with pytest.raises(R.ReleaseRejected, match="bad_key_list"):
        R.verify_key_list(R.sign(root, {**new, "keys": [{"id": "x", "public_key": "AAAA", "components": ["kiosk"]}]}),
                          root.public_key(), now=NOW)


def test_supervisor_bundle_is_what_firmware_build_makes(tmp_path, keys):
    from device_drivers.supervisor_flash import build_bundle
    from firmware import VERSION

    fw = tmp_path / "fw"
    fw_manifest = build_bundle(fw)
    out = tmp_path / "sup"
    B.build_supervisor(out, firmware_dir=fw, now=NOW)
    B.sign_bundle(out, keys[2], "rk-b")
    man = B.verify_bundle(out, keys[3], now=NOW, component="supervisor", installed="1.0.0")
    assert man.version == VERSION
    assert {f.path: f.sha256 for f in man.files} == {k: v["sha256"] for k, v in fw_manifest["files"].items()}


def test_cli_keygen_keylist_build_sign_verify(tmp_path, capsys):
    d = tmp_path
    wheels = d / "wheels"
    make_wheel(wheels, "kiosk_probe", "1.1.0", {"kiosk_probe/__init__.py": "\n"})
    assert release_cli.main(["keygen", "--out", str(d / "root.pem")]) == 0
    assert release_cli.main(["keygen", "--out", str(d / "rel.pem")]) == 0
    assert (d / "rel.pem").stat().st_mode & 0o777 == 0o600
    assert release_cli.main(["keylist", "--root", str(d / "root.pem"), "--key", f"rk-1={d / 'rel.pem.pub'}:kiosk",
                             "--serial", "1", "--out", str(d / "keys.json")]) == 0
    assert release_cli.main(["build", "kiosk", "--version", "1.1.0", "--wheels", str(wheels),
                             "--out", str(d / "b")]) == 0
    verify = ["verify", str(d / "b"), "--keys", str(d / "keys.json"), "--root-pub", str(d / "root.pem.pub")]
    capsys.readouterr()
    assert release_cli.main(verify) == 1
    assert "not_signed" in capsys.readouterr().err
    assert release_cli.main(["sign", str(d / "b"), "--key", str(d / "rel.pem"), "--key-id", "rk-1"]) == 0
    capsys.readouterr()
    assert release_cli.main(verify + ["--installed", "1.0.0"]) == 0
    assert json.loads(capsys.readouterr().out)["version"] == "1.1.0"
    assert release_cli.main(verify + ["--installed", "1.1.0"]) == 1
    assert "not_newer" in capsys.readouterr().err
    assert release_cli.main(["keygen", "--out", str(d / "rel.pem")]) == 1  # never overwrites a key
    assert "already exists" in capsys.readouterr().err
    assert release_cli.main(["build", "kiosk", "--version", "1.1", "--wheels", str(wheels),
                             "--out", str(d / "c")]) == 1
    assert "1.2.3" in capsys.readouterr().err


def test_console_scripts_refuse_bad_input_in_one_line(tmp_path):
    import os
    import subprocess
    import sys

    bindir = os.path.dirname(sys.executable)
    (tmp_path / "root.pub").write_text(R.key_text(Ed25519PrivateKey.generate()))
    (tmp_path / "keys.json").write_text("{not json")
    for argv, words in [
        (["kiosk-release", "verify", str(tmp_path / "nowhere"), "--keys", str(tmp_path / "keys.json"),
          "--root-pub", str(tmp_path / "root.pub")], "bad_key_list"),
        (["kiosk-updater", "--root", str(tmp_path / "opt"), "--root-pub", str(tmp_path / "root.pub"),
          "trust", str(tmp_path / "keys.json")], "bad_key_list"),
        (["kiosk-updater", "--root", str(tmp_path / "opt"), "--root-pub", str(tmp_path / "missing.pub"),
          "status"], "no_root_key"),
    ]:
        r = subprocess.run([os.path.join(bindir, argv[0]), *argv[1:]], capture_output=True, text=True, timeout=60)
        assert r.returncode == 1, r.stderr
        assert words in r.stderr and "Traceback" not in r.stderr
