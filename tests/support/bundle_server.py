"""A local HTTP server for release bundles, with Range support and a dropped-link fault.

It serves a bundle folder as the controller will (``/manifest.json``, ``/objects/<sha256>``),
answers ``Range: bytes=N-`` with 206, logs every request, and can cut the connection after a
number of bytes of the next response (a 4G link going away mid-download). With ``tls`` it
serves HTTPS (mutual TLS when the context requires client certificates).
"""

from __future__ import annotations

import re
import ssl
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path


class BundleServer:
    def __init__(self, root: Path, *, tls: ssl.SSLContext | None = None) -> None:
        self.root = root
        self.requests: list[tuple[str, str | None]] = []
        self.cut_after: int | None = None  # bytes of body to send before dropping the next response
        self.ignore_range = False
        self.bytes_sent = 0
        server = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args) -> None:
                pass

            def do_GET(self) -> None:  # noqa: N802 (http.server's naming)
                rng = self.headers.get("Range")
                server.requests.append((self.path, rng))
                path = (server.root / self.path.lstrip("/")).resolve()
                if not path.is_file() or server.root.resolve() not in path.parents:
                    self.send_error(404)
                    return
                data = path.read_bytes()
                start = 0
                m = re.fullmatch(r"bytes=(\d+)-", rng or "")
                if m and not server.ignore_range:
                    start = int(m.group(1))
                    self.send_response(206)
                    self.send_header("Content-Range", f"bytes {start}-{len(data) - 1}/{len(data)}")
                else:
                    self.send_response(200)
                body = data[start:]
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                if server.cut_after is not None:
                    body, server.cut_after = body[:server.cut_after], None
                    self.wfile.write(body)
                    server.bytes_sent += len(body)
                    self.close_connection = True
                    return
                self.wfile.write(body)
                server.bytes_sent += len(body)

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        if tls is not None:  # HTTPS, with client certificates when the context requires them
            self.httpd.socket = tls.wrap_socket(self.httpd.socket, server_side=True)
        scheme = "https" if tls is not None else "http"
        self.url = f"{scheme}://127.0.0.1:{self.httpd.server_address[1]}"
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)

    def __enter__(self) -> BundleServer:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()
