"""kiosk-controller itself serves the enrolment endpoint next to the console (--fleet-dir)."""

from __future__ import annotations

import os
import subprocess
import sys

from controller import ctl
from provisioning import fleet_ca, pki
from tests.provisioning.conftest import PASSPHRASE
from tests.support.broker import free_port
from tests.support.processes import REPO, Proc


def test_kiosk_enrols_through_the_running_controller(tmp_path, fleet_dir, broker, procs, capsys):
    secret = tmp_path / "ca-passphrase"
    fd = os.open(secret, os.O_WRONLY | os.O_CREAT, 0o600)
    os.write(fd, PASSPHRASE + b"\n")
    os.close(fd)
    data = fleet_dir.root / "controller"
    port = free_port()
    controller = Proc([sys.executable, "-m", "controller.cli", "--broker", broker.url, "--data-dir", str(data),
                       "--http", f"127.0.0.1:{port}", "--fleet-dir", str(fleet_dir.root),
                       "--ca-passphrase-file", str(secret)])
    procs.append(controller)
    controller.wait_for("console http://", timeout=60)

    assert ctl.main(["--data-dir", str(data), "token", "issue", "--site", "tianhe-001", "--json"]) == 0
    import json

    issued = json.loads(capsys.readouterr().out)
    token, ca_hash = issued["token"], pki.fingerprint(fleet_ca.load_ca(fleet_dir, PASSPHRASE).cert)
    cfg = tmp_path / "kiosk" / "kiosk.toml"
    out = subprocess.run([sys.executable, "-m", "provisioning.cli", "enroll", "--url", f"http://127.0.0.1:{port}",
                          "--ca-hash", ca_hash, "--kiosk-id", "th-001-09", "--site", "tianhe-001", "--config", str(cfg)],
                         input=token + "\n", capture_output=True, text=True, timeout=60, cwd=REPO)
    assert out.returncode == 0, out.stderr
    assert "enrolled th-001-09 at site tianhe-001" in out.stdout
    assert 'kiosk_id = "th-001-09"' in cfg.read_text()

    # The token is single use, through the controller too.
    again = subprocess.run([sys.executable, "-m", "provisioning.cli", "enroll", "--url", f"http://127.0.0.1:{port}",
                            "--ca-hash", ca_hash, "--kiosk-id", "th-001-10", "--site", "tianhe-001", "--config", str(tmp_path / "b.toml")],
                           input=token + "\n", capture_output=True, text=True, timeout=60, cwd=REPO)
    assert again.returncode != 0 and "token" in again.stderr


def test_wrong_or_missing_passphrase_fails_at_start(tmp_path, fleet_dir, broker):
    bad = tmp_path / "bad"
    bad.write_bytes(b"not the passphrase\n")
    base = [sys.executable, "-m", "controller.cli", "--broker", broker.url, "--data-dir", str(tmp_path / "c"),
            "--http", f"127.0.0.1:{free_port()}", "--fleet-dir", str(fleet_dir.root)]
    r = subprocess.run([*base, "--ca-passphrase-file", str(bad)], capture_output=True, text=True, timeout=60,
                       cwd=REPO)
    assert r.returncode == 2 and "Traceback" not in r.stderr and "not the passphrase" not in r.stderr
    env = {k: v for k, v in os.environ.items() if k != "CREDENTIALS_DIRECTORY"}
    r = subprocess.run(base, capture_output=True, text=True, timeout=60, cwd=REPO, env=env)
    assert r.returncode == 2 and "ca_passphrase_file" in r.stderr
