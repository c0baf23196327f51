"""A private PostgreSQL cluster in a temporary folder on a free loopback port, stopped after use.

Debian's PostgreSQL 15 (``scripts/bootstrap`` installs it). ``initdb`` refuses to run as root, so
as root the cluster belongs to the ``postgres`` user. Trust authentication on 127.0.0.1 only.
"""

from __future__ import annotations

import glob
import os
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

from tests.support.broker import free_port, wait_for_port


def _bin(name: str) -> str:
    found = shutil.which(name) or sorted(glob.glob(f"/usr/lib/postgresql/*/bin/{name}"))[-1:]
    if not found:
        raise RuntimeError(f"PostgreSQL's {name} not found: run scripts/bootstrap")
    return found if isinstance(found, str) else found[0]


@dataclass
class PostgresCluster:
    workdir: Path
    port: int = 0

    def _run(self, *argv: str) -> None:
        cmd = list(argv)
        if os.geteuid() == 0:
            cmd = ["runuser", "-u", "postgres", "--", *cmd]
        subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, cwd=self.workdir)

    def start(self) -> PostgresCluster:
        self.workdir.mkdir(parents=True, exist_ok=True)
        if os.geteuid() == 0:
            shutil.chown(self.workdir, "postgres", "postgres")
        own_port = not self.port
        self.port = self.port or free_port()
        self._run(_bin("initdb"), "-D", str(self.workdir / "data"), "-U", "postgres", "--auth=trust", "-E", "UTF8",
                  "--no-sync")
        # A port free_port() found free can be taken before the server binds it (another xdist
        # worker's broker or cluster): a port chosen here is chosen again, as tests/support/broker.py does.
        for attempt in range(5):
            logged = self._log_size()
            try:
                self.serve()
                return self
            except subprocess.CalledProcessError:
                if not own_port or attempt == 4 or "already in use" not in self._log_since(logged):
                    raise
                self.port = free_port()
        raise AssertionError("unreachable")

    def _log_size(self) -> int:
        try:
            return (self.workdir / "log").stat().st_size
        except OSError:
            return 0

    def _log_since(self, offset: int) -> str:
        try:
            with open(self.workdir / "log", "rb") as f:
                f.seek(offset)
                return f.read().decode("utf-8", "replace")
        except OSError:
            return ""

    def serve(self) -> None:
        """Start the server of an existing cluster (after ``stop``)."""
        self._run(_bin("pg_ctl"), "-D", str(self.workdir / "data"), "-l", str(self.workdir / "log"), "-w", "-o",
                  f"-h 127.0.0.1 -p {self.port} -k {self.workdir} -c fsync=off", "start")
        wait_for_port("127.0.0.1", self.port)

    def restart(self) -> None:
        """Stop the server at once (every client's connection is cut) and start it again on the
        same port with the same databases; returns once it accepts connections."""
        self.stop()
        self.serve()

    def url(self, database: str = "postgres") -> str:
        return f"postgresql://postgres@127.0.0.1:{self.port}/{database}"

    def create_database(self, name: str) -> str:
        import psycopg

        with psycopg.connect(self.url(), autocommit=True) as conn:
            conn.execute(f'CREATE DATABASE "{name}"')  # type: ignore[arg-type]
        return self.url(name)

    def stop(self) -> None:
        self._run(_bin("pg_ctl"), "-D", str(self.workdir / "data"), "-m", "immediate", "-w", "stop")
