"""Run the console with uvicorn in a background thread of ``kiosk-controller``."""

from __future__ import annotations

import logging
import threading
import time
from typing import Any

import uvicorn

from foundation.errors import ConfigError, TransportError

log = logging.getLogger(__name__)


def parse_http(text: str) -> tuple[str, int]:
    """``HOST:PORT`` (``[::1]:8080`` for IPv6); port 0 picks a free port."""
    host, sep, port = text.rpartition(":")
    if not sep or not host:
        raise ConfigError(f"expected HOST:PORT, got {text!r}", field="http")
    try:
        num = int(port)
    except ValueError:
        raise ConfigError(f"port must be a number, got {port!r}", field="http") from None
    if not 0 <= num <= 65535:
        raise ConfigError(f"port must be 0-65535, got {num}", field="http")
    return host.strip("[]"), num


class ConsoleServer:
    """uvicorn in a thread; ``start()`` returns once it listens, with the real address."""

    def __init__(self, app: Any, http: str, *, trusted_proxies: tuple[str, ...] = ()) -> None:
        self.app = app
        self.host, self.port = parse_http(http)
        # uvicorn believes X-Forwarded-For from 127.0.0.1 by default: only configured proxies here,
        # so the audit log's source address cannot be forged by a header.
        config = uvicorn.Config(app, host=self.host, port=self.port, log_level="warning", access_log=False,
                                lifespan="on", timeout_graceful_shutdown=2, proxy_headers=bool(trusted_proxies),
                                forwarded_allow_ips=list(trusted_proxies) or None)
        self.server = uvicorn.Server(config)
        self.thread = threading.Thread(target=self.server.run, name="console-http", daemon=True)

    def start(self, timeout: float = 15.0) -> str:
        self.thread.start()
        deadline = time.monotonic() + timeout
        while not self.server.started:
            if not self.thread.is_alive() or time.monotonic() > deadline:
                self._abandon()
                raise TransportError(f"the console could not listen on {self.host}:{self.port} "
                                     "(port in use or not allowed?)")
            time.sleep(0.02)
        sock = self.server.servers[0].sockets[0]
        port = sock.getsockname()[1]
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"http://{host}:{port}/"

    def _abandon(self) -> None:
        # uvicorn ran the app's startup (the store poller) before failing to bind: undo it.
        self.server.should_exit = True
        console = getattr(getattr(self.app, "state", None), "console", None)
        if console is not None and console.poller is not None:
            console.poller.stop()

    def stop(self) -> None:
        console = getattr(getattr(self.app, "state", None), "console", None)
        if console is not None:
            console.hub.close()  # end the event streams first: they would hold the shutdown
            time.sleep(0.1)
        self.server.should_exit = True
        self.thread.join(5)


def start_console(controller: Any, config, *, extra_routes: tuple = ()) -> tuple[ConsoleServer, str]:
    """Build the console for a running Controller and serve it on ``config.http``."""
    from controller.web.app import build_console, create_app

    console = build_console(config.data_dir, controller, fleet_dir=getattr(config, "fleet_dir", "") or None)
    server = ConsoleServer(create_app(console, extra_routes=extra_routes), config.http,
                           trusted_proxies=tuple(getattr(config, "trusted_proxies", ()) or ()))
    url = server.start()
    log.info("console serving", extra={"fields": {"url": url}})
    return server, url
