"""``kiosk-controller --http``: prints the console address; a taken port does not stop the fleet side."""

from __future__ import annotations

import socket
import subprocess
import sys
import time

import httpx

from tests.support.processes import Proc


def test_console_address_printed_and_port_clash_is_survived(broker, procs, tmp_path):
    ctl = Proc([sys.executable, "-m", "controller.cli", "--broker", broker.url, "--data-dir", str(tmp_path / "a"),
                "--http", "127.0.0.1:0"])
    procs.append(ctl)
    url = ctl.wait_for("console http://", timeout=20).split(" ", 1)[1]
    assert httpx.get(url + "healthz", timeout=5).json() == {"ok": True}
    assert httpx.get(url + "api/v1/kiosks", timeout=5).status_code == 401

    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        other = Proc([sys.executable, "-m", "controller.cli", "--broker", broker.url, "--data-dir",
                      str(tmp_path / "b"), "--http", f"127.0.0.1:{port}"])
        procs.append(other)
        other.wait_for("controller online", timeout=20)
        end = time.monotonic() + 20
        while not any("console not started" in line for line in other.stderr_lines) and time.monotonic() < end:
            time.sleep(0.1)
        assert any("console not started" in line for line in other.stderr_lines), other.stderr_lines[-5:]
        assert other.proc.poll() is None, "the fleet controller must keep running"
    assert other.stop() == 0


def test_bad_http_value_is_named(broker, tmp_path):
    r = subprocess.run([sys.executable, "-m", "controller.cli", "--broker", broker.url, "--data-dir", str(tmp_path),
                        "--http", "nonsense"], capture_output=True, text=True, timeout=30)
    assert r.returncode == 2 and "http" in r.stderr and "HOST:PORT" in r.stderr
