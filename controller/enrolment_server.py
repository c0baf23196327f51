"""A standalone enrolment server: the enrolment routes in a tiny Starlette app under uvicorn.

The operator console mounts ``controller.enrolment_service.routes`` in its own app; this module is for
running enrolment on its own (``python -m controller.enrolment_server``) and for the tests, which run
it in a thread on a free port.
"""

from __future__ import annotations

import datetime as dt
import logging
import threading
import time
from pathlib import Path

from controller import enrolment_service
from controller.fleet_db import FleetDb
from foundation.secure_files import resident_key_file
from provisioning import fleet_ca

log = logging.getLogger(__name__)


def open_context(fleet_dir: Path, passphrase: bytes, *, controller_dir: Path | None = None,
                 broker_url: str = "", clock=time.time, database: str = "") -> enrolment_service.EnrolmentContext:
    """Load CA (decrypting its key), index and controller DB (``database``: its PostgreSQL URL)
    for the enrolment routes."""
    lay = fleet_ca.Layout(Path(fleet_dir))
    ca = fleet_ca.load_ca(lay, passphrase)
    conn = FleetDb(Path(controller_dir or lay.root / "controller"), database).connect()
    pub = lay.signing_pub.read_text().strip() if lay.signing_pub.exists() else ""
    if not broker_url and lay.controller_toml.exists():
        import tomllib

        broker_url = tomllib.loads(lay.controller_toml.read_text()).get("broker", "")
    # A fleet made before resident-reference keys existed gets its key now (once, 0600).
    resident_key = resident_key_file(lay.resident_key, create=True).hex()
    index = fleet_ca.CertIndex(lay.index)
    return enrolment_service.EnrolmentContext(
        conn=conn, ca=ca, index=index, broker_url=broker_url, controller_public_key=pub, clock=clock,
        resident_ref_key=resident_key,
        on_revoke=lambda: fleet_ca.write_crl(lay, ca, index, dt.datetime.fromtimestamp(clock(), dt.UTC)))


def make_app(ctx: enrolment_service.EnrolmentContext):
    from starlette.applications import Starlette
    from starlette.middleware import Middleware

    from controller.web.body_limit import BodyLimit

    return Starlette(routes=enrolment_service.routes(lambda: ctx), middleware=[Middleware(BodyLimit)])


class EnrolmentServer:
    """uvicorn in a background thread; ``url`` is known once ``start`` returns."""

    def __init__(self, ctx: enrolment_service.EnrolmentContext, host: str = "127.0.0.1", port: int = 0) -> None:
        import uvicorn

        self.config = uvicorn.Config(make_app(ctx), host=host, port=port, log_level="warning", access_log=False,
                                     lifespan="off", proxy_headers=False)
        self.server = uvicorn.Server(self.config)
        self.thread = threading.Thread(target=self.server.run, name="enrolment-http", daemon=True)
        self.url = ""

    def start(self, timeout: float = 10.0) -> EnrolmentServer:
        self.thread.start()
        deadline = time.monotonic() + timeout
        while not self.server.started:
            if time.monotonic() > deadline or not self.thread.is_alive():
                raise RuntimeError("the enrolment server did not start (port in use?)")
            time.sleep(0.02)
        sock = self.server.servers[0].sockets[0]
        host, port = sock.getsockname()[:2]
        self.url = f"http://{host}:{port}"
        return self

    def stop(self) -> None:
        self.server.should_exit = True
        self.thread.join(10)


def main(argv: list[str] | None = None) -> int:
    """``python -m controller.enrolment_server --data-dir FLEET``: the enrolment endpoint without the console."""
    import argparse
    import sys

    from foundation.errors import KioskError
    from foundation.lifecycle import wait_for_stop_signal
    from foundation.logs import setup_logging
    from foundation.secure_files import read_passphrase_file

    p = argparse.ArgumentParser(prog="python -m controller.enrolment_server",
                                description="Run the kiosk enrolment endpoint on its own (without the console).")
    p.add_argument("--data-dir", type=Path, required=True, help="the fleet folder init-fleet created")
    p.add_argument("--passphrase-file", type=Path, required=True, help="read the CA passphrase from this file")
    p.add_argument("--listen", default="127.0.0.1:8443", help="HOST:PORT (0 = any free port)")
    p.add_argument("--broker", help="broker URL given to kiosks (default from controller/controller.toml)")
    p.add_argument("--log-level", default="WARNING")
    args = p.parse_args(argv)
    setup_logging(args.log_level)
    try:
        ctx = open_context(args.data_dir, read_passphrase_file(args.passphrase_file), broker_url=args.broker or "")
        host, _, port = args.listen.rpartition(":")
        server = EnrolmentServer(ctx, host or "127.0.0.1", int(port)).start()
    except KioskError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    print(f"READY enrolment {server.url}", flush=True)
    try:
        wait_for_stop_signal()
    finally:
        server.stop()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
