"""PostgreSQL restarted under a running controller (issue 16): the console, the API and ingest
come back by themselves. A real ``kiosk-controller`` process started from its TOML config on a
private PostgreSQL cluster, the real Mosquitto, a real kiosk agent; the cluster is stopped at once
(every connection cut) and started again on the same port.

While it is down the API answers 503 (not 500). Once it is back, sign-in, API reads and the
kiosk's events work again within seconds, and no request answers 500: each long-lived connection notices the server's goodbye and
reconnects before its next statement (``controller.store_pg.PgConnection``).
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx
import pytest

from controller import store_pg
from tests.scale.test_several_controllers import _agent, _key
from tests.support.postgres import PostgresCluster
from tests.support.processes import REPO, Proc
from tests.support.waiting import wait_until

KIOSKCTL = str(REPO / ".venv" / "bin" / "kioskctl")


@pytest.fixture
def own_cluster():
    """A cluster of this test's own: restarting it must not cut other tests' connections."""
    folder = Path(tempfile.mkdtemp(prefix="kiosk-pg-restart-"))
    cluster = PostgresCluster(folder).start()
    yield cluster
    cluster.stop()
    shutil.rmtree(folder, ignore_errors=True)


def _events(url: str, kind: str) -> int:
    conn = store_pg.PgConnection(url)
    try:
        return conn.execute("SELECT COUNT(*) FROM events WHERE type = ?", (kind,)).fetchone()[0]
    finally:
        conn.close()


def test_console_api_and_ingest_recover_after_a_postgresql_restart(broker, procs, tmp_path, own_cluster):
    url = own_cluster.create_database("fleet")
    key, public = _key(tmp_path)
    config = tmp_path / "controller.toml"
    config.write_text(f'broker = "{broker.url}"\ndata_dir = "{tmp_path / "data"}"\nhttp = "127.0.0.1:0"\n'
                      f'database = "{url}"\nsigning_key = "{key}"\n', encoding="utf-8")
    ctl = Proc([sys.executable, "-m", "controller.cli", "--config", str(config)])
    procs.append(ctl)
    console = ctl.wait_for("console http://", timeout=30).split(" ", 1)[1].strip()
    (tmp_path / "pw").write_text("otto-operator-pw\n", encoding="utf-8")
    made = subprocess.run([KIOSKCTL, "--config", str(config), "user", "add", "otto", "--role", "operator",
                           "--password-file", str(tmp_path / "pw")], capture_output=True, text=True, timeout=30,
                          env={**os.environ, "KIOSKCTL_USER": "ada"})
    assert made.returncode == 0, made.stderr
    agents: list = []
    client = httpx.Client(base_url=console, timeout=10)
    statuses: list[tuple[str, int]] = []

    def sign_in_and_read() -> bool:
        client.cookies.clear()
        signed = client.post("/login", data={"name": "otto", "password": "otto-operator-pw"})
        statuses.append(("login", signed.status_code))
        if signed.status_code != 303:
            return False
        for path in ("/api/v1/kiosks", "/api/v1/kiosks/K-PGR", "/api/v1/alarms"):
            read = client.get(path)
            statuses.append((path, read.status_code))
            if read.status_code != 200:
                return False
        return True

    try:
        agent = _agent(broker, tmp_path, "K-PGR", public, agents)
        wait_until(sign_in_and_read, 15, "signed in, the kiosk in the API")
        agent.emit("before_restart", {})
        wait_until(lambda: _events(url, "before_restart") == 1, 15, "an event stored before the restart")

        own_cluster.stop()  # every connection cut at once
        down = client.get("/api/v1/kiosks")
        assert down.status_code == 503 and "fleet database" in down.json()["error"], down.text  # not a 500
        own_cluster.serve()
        back = time.monotonic()
        statuses.clear()
        wait_until(sign_in_and_read, 15, "sign-in and API reads after PostgreSQL is back")  # 0.1-0.3 s unloaded
        print(f"console back {time.monotonic() - back:.2f} s after PostgreSQL; requests: {statuses}")
        assert all(status != 500 for _, status in statuses), statuses
        agent.emit("after_restart", {})
        wait_until(lambda: _events(url, "after_restart") == 1, 15, "the kiosk's event stored after the restart")
        # Logged before the reconnected statement ran, but read from the pipe by another thread.
        wait_until(lambda: any("lost the connection to PostgreSQL" in line for line in ctl.stderr_lines), 10,
                   "the reconnection logged")
    finally:
        client.close()
        for a in agents:
            a.stop()
