"""self-test against the pty simulators, reporting over mutual TLS to a real broker."""

from __future__ import annotations

import json
import subprocess
import sys

from provisioning.enrol_client import dump_toml
from tests.provisioning.conftest import Client
from tests.support.identities import Issuer
from tests.support.processes import REPO
from tests.support.waiting import wait_until


def _kiosk_config(tmp_path, fleet_dir, port, devices: dict) -> str:
    with Issuer(fleet_dir, tmp_path / "tls") as issuer:
        cert_file, key_file = issuer.issue("th-042", "tianhe-042")
    cfg = tmp_path / "kiosk.toml"
    cfg.write_text(dump_toml({
        "kiosk_id": "th-042", "site": "tianhe-042", "broker": f"mqtts://127.0.0.1:{port}",
        "data_dir": str(tmp_path / "data"), "ca_file": str(fleet_dir.ca_cert), "cert_file": str(cert_file),
        "key_file": str(key_file), "devices": devices}))
    return str(cfg)


def test_self_test_passes_prints_receipt_and_reports(tmp_path, fleet_dir, tls_broker, sim):
    out = tmp_path / "receipts"
    _, printer = sim("printer", out=out)
    _, supervisor = sim("supervisor")
    _, card = sim("card-reader")
    _, idr = sim("id-reader")
    _, scanner = sim("scanner")
    cfg = _kiosk_config(tmp_path, fleet_dir, tls_broker.port,
                        {"printer": str(printer), "supervisor": str(supervisor), "card_reader": str(card),
                         "id_reader": str(idr), "scanner": str(scanner)})
    ctl = Client(tls_broker.port, fleet_dir.ca_cert, fleet_dir.controller_cert, fleet_dir.controller_key, "ctl")
    assert ctl.connect()
    ctl.subscribe("kiosk/v1/+/events")
    try:
        r = subprocess.run([sys.executable, "-m", "provisioning.cli", "self-test", "--config", cfg],
                           capture_output=True, text=True, timeout=120, cwd=REPO)
        assert r.returncode == 0, r.stdout + r.stderr
        lines = r.stdout.splitlines()
        assert any(s.startswith("printer") and "PASS" in s for s in lines)
        assert any(s.startswith("supervisor") and "PASS" in s and "firmware" in s for s in lines)
        for name in ("card_reader", "id_reader", "scanner"):
            assert any(s.startswith(name) and "PASS" in s for s in lines), (name, lines)
        assert "终端 Kiosk: th-042" in r.stdout
        assert wait_until(lambda: ctl.messages, timeout=10)
        topic, payload = ctl.messages[0]
        event = json.loads(payload)
        assert topic == "kiosk/v1/th-042/events" and event["type"] == "self_test" and event["result"] == "pass"
        assert {c["name"]: c["status"] for c in event["checks"]} == dict.fromkeys(
            ("printer", "id_reader", "card_reader", "scanner", "supervisor"), "pass")
        assert wait_until(lambda: len(sorted(out.glob("*.txt"))) >= 2, timeout=10)
        texts = sorted(out.glob("*.txt"))
        receipt = texts[-1].read_text(encoding="utf-8")
        assert "th-042" in receipt and "tianhe-042" in receipt
    finally:
        ctl.close()


def test_self_test_failure_names_what_to_check(tmp_path, fleet_dir):
    cfg = _kiosk_config(tmp_path, fleet_dir, 1, {"printer": str(tmp_path / "no-such-port")})
    r = subprocess.run([sys.executable, "-m", "provisioning.cli", "self-test", "--no-report", "--config", cfg],
                       capture_output=True, text=True, timeout=120, cwd=REPO)
    assert r.returncode == 1
    assert any(s.startswith("scanner") and "SKIPPED" in s for s in r.stdout.splitlines())
    assert "FAIL" in r.stdout and "check: check the printer's power, USB cable" in r.stdout
