"""A standalone enrolment server: the enrolment routes in a tiny Starlette app under uvicorn.

The operator console mounts ``controller.enrolment.routes`` in its own app; this module is for
running enrolment on its own (``kiosk-provision serve-enrolment``) and for the tests, which run
it in a thread on a free port.
"""

from __future__ import annotations

import logging
import threading
import time
from pathlib import Path

from controller import enrolment
from controller.store import connect
from provisioning import fleet
from provisioning.secure_files import resident_key_file

log = logging.getLogger(__name__)


def open_context(fleet_dir: Path, passphrase: bytes, *, controller_dir: Path | None = None,
                 broker_url: str = "", clock=time.time) -> enrolment.EnrolmentContext:
    """Load CA (decrypting its key), index and controller DB for the enrolment routes."""
    lay = fleet.Layout(Path(fleet_dir))
    ca = fleet.load_ca(lay, passphrase)
    conn = connect(controller_dir or lay.root / "controller")
    pub = lay.signing_pub.read_text().strip() if lay.signing_pub.exists() else ""
    if not broker_url and lay.controller_toml.exists():
        import tomllib

        broker_url = tomllib.loads(lay.controller_toml.read_text()).get("broker", "")
    # A fleet made before resident-reference keys existed gets its key now (once, 0600).
    resident_key = resident_key_file(lay.resident_key, create=True).hex()
    return enrolment.EnrolmentContext(conn=conn, ca=ca, index=fleet.CertIndex(lay.index), broker_url=broker_url,
                                      controller_public_key=pub, clock=clock, resident_ref_key=resident_key)


def make_app(ctx: enrolment.EnrolmentContext):
    from starlette.applications import Starlette

    return Starlette(routes=enrolment.routes(lambda: ctx))


class EnrolmentServer:
    """uvicorn in a background thread; ``url`` is known once ``start`` returns."""

    def __init__(self, ctx: enrolment.EnrolmentContext, host: str = "127.0.0.1", port: int = 0) -> None:
        import uvicorn

        self.config = uvicorn.Config(make_app(ctx), host=host, port=port, log_level="warning", access_log=False,
                                     lifespan="off")
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
