"""Key files are 0600 from creation, the CA key is encrypted, and secrets never reach a log."""

from __future__ import annotations

import argparse
import logging
import os
import stat
import subprocess
import sys

import pytest
from cryptography.hazmat.primitives.serialization import Encoding

from controller import ctl_tokens, enrolment_service
from foundation import secure_files
from foundation.errors import EnrolmentRefused, ProvisioningError
from provisioning import fleet_ca, pki
from tests.provisioning.conftest import PASSPHRASE, token
from tests.support.processes import REPO


def _cli(*args, input=None):
    return subprocess.run([sys.executable, "-m", "provisioning.cli", *args], capture_output=True, text=True,
                          timeout=60, cwd=REPO, input=input)


def test_private_files_are_0600_and_ca_key_encrypted(fleet_dir):
    for path in (fleet_dir.ca_key, fleet_dir.server_key, fleet_dir.controller_key, fleet_dir.signing_key):
        assert stat.S_IMODE(path.stat().st_mode) == 0o600, path
    for path in (fleet_dir.ca_cert, fleet_dir.crl, fleet_dir.acl, fleet_dir.mosquitto_conf):
        assert stat.S_IMODE(path.stat().st_mode) == 0o644, path
    assert b"ENCRYPTED PRIVATE KEY" in fleet_dir.ca_key.read_bytes()
    with pytest.raises(ProvisioningError) as exc:
        fleet_ca.load_ca(fleet_dir, b"guess-1234")
    assert "wrong passphrase" in str(exc.value) and "guess-1234" not in str(exc.value)


def test_signing_key_loads_with_the_controllers_loader(fleet_dir):
    from contract import signing

    key = signing.load_or_create_key(fleet_dir.root / "controller")
    assert signing.public_key_text(key) == fleet_dir.signing_pub.read_text().strip()


def test_private_file_mode_is_set_at_creation_under_a_permissive_umask(tmp_path):
    old = os.umask(0)
    try:
        path = secure_files.write_private(tmp_path / "k.pem", b"secret")
    finally:
        os.umask(old)
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    with pytest.raises(ProvisioningError, match="refusing to overwrite"):
        secure_files.write_private(path, b"other", overwrite=False)
    assert path.read_bytes() == b"secret" and [p.name for p in tmp_path.iterdir()] == ["k.pem"]


def test_cli_init_fleet_and_issue_keep_secrets_out_of_output(tmp_path):
    secret = "a-very-secret-ca-passphrase"
    pf = tmp_path / "pass"
    pf.write_text(secret + "\n")
    out = _cli("--log-level", "DEBUG", "init-fleet", "--data-dir", str(tmp_path / "f"), "--passphrase-file", str(pf))
    assert out.returncode == 0, out.stderr
    assert "CA fingerprint" in out.stdout and "creating the fleet CA" in out.stderr
    again = _cli("init-fleet", "--data-dir", str(tmp_path / "f"), "--passphrase-file", str(pf))
    assert again.returncode == 2 and "already holds a fleet" in again.stderr
    iss = _cli("--log-level", "DEBUG", "issue", "--data-dir", str(tmp_path / "f"), "--passphrase-file", str(pf),
               "--kiosk-id", "k-1", "--site", "s", "--out", str(tmp_path / "out"))
    assert iss.returncode == 0, iss.stderr
    assert stat.S_IMODE((tmp_path / "out" / "k-1.key.pem").stat().st_mode) == 0o600
    wrong = tmp_path / "wrong"
    wrong.write_text("not-the-passphrase\n")
    bad = _cli("issue", "--data-dir", str(tmp_path / "f"), "--passphrase-file", str(wrong), "--kiosk-id", "k-2",
               "--site", "s", "--out", str(tmp_path / "out"))
    assert bad.returncode == 2 and "wrong passphrase" in bad.stderr
    for text in (out.stdout, out.stderr, iss.stdout, iss.stderr, bad.stderr):
        assert secret not in text and "not-the-passphrase" not in text and "PRIVATE KEY" not in text


def test_cli_without_passphrase_source_says_what_to_do(tmp_path):
    out = _cli("init-fleet", "--data-dir", str(tmp_path / "f"), input="")
    assert out.returncode == 2 and "--passphrase-file" in out.stderr


def test_help_lists_subcommands():
    out = _cli("--help")
    for name in ("init-fleet", "enroll", "renew", "revoke", "issue", "crl"):
        assert name in out.stdout


def test_standalone_enrolment_server_is_the_controllers():
    out = subprocess.run([sys.executable, "-m", "controller.enrolment_server", "--help"], capture_output=True,
                         text=True, timeout=60)
    assert out.returncode == 0 and "--passphrase-file" in out.stdout


def test_tokens_and_csrs_never_logged(enrol_ctx, caplog):
    caplog.set_level(logging.DEBUG)
    t = token(enrol_ctx)
    csr = pki.build_csr(pki.new_ec_key(), "th-001").public_bytes(Encoding.PEM).decode()
    with pytest.raises(EnrolmentRefused):
        enrolment_service.enroll(enrol_ctx, {"token": t, "kiosk_id": "th-001", "site": "elsewhere", "csr": csr})
    enrolment_service.enroll(enrol_ctx, {"token": t, "kiosk_id": "th-001", "site": "tianhe-001", "csr": csr})
    text = "\n".join(r.getMessage() + str(getattr(r, "fields", "")) for r in caplog.records)
    assert "enrolment refused" in text and "kiosk enrolled" in text
    assert t not in text and t.split(".", 1)[1] not in text and "CERTIFICATE REQUEST" not in text
    stored = [tuple(r) for r in enrol_ctx.conn.execute("SELECT token_hash FROM enrol_tokens")]
    assert stored == [(enrolment_service.token_hash(t),)]


def test_kioskctl_token_issue(tmp_path, fleet_dir, capsys):
    parser = argparse.ArgumentParser(prog="kioskctl")
    sub = parser.add_subparsers(dest="command", required=True)
    ctl_tokens.register(sub)
    args = parser.parse_args(["token", "issue", "--site", "tianhe-001", "--kiosk-id", "th-001"])
    args.data_dir = fleet_dir.root / "controller"
    assert args.handler(args, now=1000.0) == 0
    out = capsys.readouterr().out
    assert "token:    ket1." in out and "single use" in out and pki.fingerprint(
        fleet_ca.load_ca(fleet_dir, PASSPHRASE).cert) in out
    bad = parser.parse_args(["token", "issue", "--site", "s", "--ttl", "0"])
    bad.data_dir = fleet_dir.root / "controller"
    assert bad.handler(bad) == 2 and "ttl" in capsys.readouterr().err


def test_kioskctl_main_has_token_issue(tmp_path, fleet_dir, capsys):
    from controller import ctl

    code = ctl.main(["--data-dir", str(fleet_dir.root / "controller"), "token", "issue", "--site", "tianhe-001",
                     "--json"])
    assert code == 0
    import json as _json

    issued = _json.loads(capsys.readouterr().out)
    assert issued["site"] == "tianhe-001" and issued["token"].startswith("ket1.") and issued["ca_hash"]
