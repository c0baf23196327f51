"""Every console script answers --help, and bad input gets one clear line, not a traceback."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time

import pytest

from tests.support.broker import free_port
from tests.support.processes import REPO, Proc

BIN = os.path.dirname(sys.executable)
SCRIPTS = ["kiosk", "kiosk-agent", "kiosk-controller", "kioskctl", "kiosk-provision", "kiosk-release", "kiosk-updater"]


@pytest.mark.parametrize("script", SCRIPTS)
def test_help(script):
    r = subprocess.run([os.path.join(BIN, script), "--help"], capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, r.stderr
    assert "usage:" in r.stdout


def _run(argv, **kw):
    return subprocess.run(argv, capture_output=True, text=True, timeout=60, cwd=REPO, **kw)


def test_config_file_that_is_not_toml(tmp_path):
    bad = tmp_path / "kiosk.toml"
    bad.write_bytes(b"\xff\xfe not toml at all \x00")
    r = _run([os.path.join(BIN, "kiosk-agent"), "--config", str(bad)])
    assert r.returncode == 2
    assert str(bad) in r.stderr and "UTF-8" in r.stderr
    assert "Traceback" not in r.stderr


def test_config_path_that_is_a_folder(tmp_path):
    r = _run([os.path.join(BIN, "kiosk-controller"), "--config", str(tmp_path)])
    assert r.returncode == 2 and "is a directory" in r.stderr and "Traceback" not in r.stderr


def test_config_missing_file(tmp_path):
    r = _run([os.path.join(BIN, "kiosk-controller"), "--config", str(tmp_path / "nope.toml")])
    assert r.returncode == 2 and "file not found" in r.stderr


def test_config_bad_field_is_named(tmp_path):
    cfg = tmp_path / "kiosk.toml"
    cfg.write_text('kiosk_id = "GD-1"\nbroker = "mqtt://127.0.0.1:1"\ndata_dir = "x"\ntelemetry_interval = "fast"\n')
    r = _run([os.path.join(BIN, "kiosk-agent"), "--config", str(cfg)])
    assert r.returncode == 2
    assert "telemetry_interval" in r.stderr and "'fast'" in r.stderr and "Traceback" not in r.stderr


def test_unknown_critical_device_is_named(tmp_path):
    cfg = tmp_path / "kiosk.toml"
    cfg.write_text('kiosk_id = "GD-1"\nbroker = "mqtt://127.0.0.1:1"\ndata_dir = "x"\n'
                   'critical_devices = ["id_reader", "fax"]\n')
    r = subprocess.run([os.path.join(BIN, "kiosk"), "--config", str(cfg)], capture_output=True, text=True,
                       timeout=60, cwd=tmp_path)
    assert r.returncode == 2
    assert "critical_devices[1]" in r.stderr and "'fax'" in r.stderr and "Traceback" not in r.stderr
    assert sorted(p.name for p in tmp_path.iterdir()) == ["kiosk.toml"]  # nothing written for a bad config


def test_bad_broker_url_and_kiosk_id(tmp_path):
    r = _run([os.path.join(BIN, "kiosk-agent"), "--kiosk-id", "GD-1", "--broker", "http://x",
              "--data-dir", str(tmp_path)])
    assert r.returncode == 2 and "broker" in r.stderr and "scheme" in r.stderr
    r = _run([os.path.join(BIN, "kiosk-agent"), "--kiosk-id", "a/b#", "--data-dir", str(tmp_path)])
    assert r.returncode == 2 and "kiosk_id" in r.stderr


def test_broker_not_running_retries_with_backoff_then_stops_cleanly(tmp_path, procs):
    port = free_port()
    p = Proc([os.path.join(BIN, "kiosk-agent"), "--kiosk-id", "GD-1", "--broker", f"mqtt://127.0.0.1:{port}",
              "--data-dir", str(tmp_path)])
    procs.append(p)
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline and sum("retrying in" in s for s in p.stderr_lines) < 2:
        time.sleep(0.1)
    retries = [s for s in p.stderr_lines if "retrying in" in s]
    assert len(retries) >= 2, p.stderr_lines
    assert f"127.0.0.1:{port} not reachable" in retries[0]
    delays = [float(s.rsplit("retrying in ", 1)[1].split()[0]) for s in retries]
    assert all(0 < d <= 30 for d in delays)
    p.signal(signal.SIGTERM)
    assert p.wait_exit(10) in (0, 2)
    assert not any("Traceback" in s for s in p.stderr_lines)


def test_kioskctl_without_controller_data(tmp_path):
    r = _run([os.path.join(BIN, "kioskctl"), "--data-dir", str(tmp_path), "status", "--json"])
    assert r.returncode == 2 and "no controller database" in r.stderr
    assert r.stdout == ""  # output is text on error, never a half JSON document


def test_kioskctl_on_a_foreign_database_is_a_clear_error(tmp_path):
    import sqlite3

    sqlite3.connect(tmp_path / "controller.sqlite3").execute("CREATE TABLE other (x)")
    r = _run([os.path.join(BIN, "kioskctl"), "--data-dir", str(tmp_path), "status"])
    assert r.returncode == 2 and "cannot be read" in r.stderr and "Traceback" not in r.stderr
