"""A kiosk enrolled with the real CLI connects over mutual TLS and shows up at the controller."""

from __future__ import annotations

import json
import subprocess
import sys

from controller.enrolment_server import EnrolmentServer, open_context
from provisioning import pki
from tests.provisioning.conftest import PASSPHRASE, token
from tests.support.processes import REPO, Proc
from tests.support.waiting import wait_until


def test_enrolled_kiosk_connects_and_works(tmp_path, fleet_dir, tls_broker, procs):
    broker = f"mqtts://127.0.0.1:{tls_broker.port}"
    ctx = open_context(fleet_dir.root, PASSPHRASE, broker_url=broker)
    server = EnrolmentServer(ctx).start()
    try:
        t = token(ctx, "haizhu-007", kiosk_id="hz-007-01")
        cfg = tmp_path / "kiosk" / "kiosk.toml"
        out = subprocess.run([sys.executable, "-m", "provisioning.cli", "enroll", "--url", server.url,
                              "--ca-hash", pki.fingerprint(ctx.ca.cert),
                              "--kiosk-id", "hz-007-01", "--site", "haizhu-007", "--config", str(cfg)],
                             input=t + "\n", capture_output=True, text=True, timeout=60, cwd=REPO)
    finally:
        server.stop()
        ctx.index.close()
        ctx.conn.close()
    assert out.returncode == 0, out.stderr
    assert "enrolled hz-007-01 at site haizhu-007" in out.stdout
    assert t not in out.stdout + out.stderr

    ctl = Proc([sys.executable, "-m", "controller.cli", "--config", str(fleet_dir.controller_toml),
                "--broker", broker])
    procs.append(ctl)
    ctl.wait_for("controller online", timeout=30)
    agent = Proc([sys.executable, "-m", "kiosk_ui.agent.cli", "--config", str(cfg)])
    procs.append(agent)
    agent.wait_for("kiosk hz-007-01 online", timeout=30)

    def status():
        r = subprocess.run([sys.executable, "-m", "controller.ctl", "status", "--json", "--data-dir",
                            str(fleet_dir.root / "controller")], capture_output=True, text=True, timeout=30, cwd=REPO)
        return json.loads(r.stdout) if r.returncode == 0 and r.stdout.strip() else []

    assert wait_until(lambda: [(k["kiosk_id"], k["state"]) for k in status()] == [("hz-007-01", "online")],
                      timeout=20)
    agent.stop()
    assert wait_until(lambda: [(k["kiosk_id"], k["state"], k["reason"]) for k in status()]
                      == [("hz-007-01", "offline", "shutdown")], timeout=20)
