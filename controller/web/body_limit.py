"""ASGI middleware that bounds every request body before any handler reads it.

A request announcing more than ``max_bytes`` (``Content-Length``) is answered 413 at once,
without reading the body; a chunked body is counted as it arrives and cut off with 413 as soon
as it passes the limit, so no route (the unauthenticated enrolment endpoint included) ever
holds more than the limit in memory.
"""

from __future__ import annotations

import json

MAX_BODY = 1024 * 1024  # the console's largest legitimate body (a config layer, a form) is far smaller


class _TooLarge(Exception):
    pass


class BodyLimit:
    def __init__(self, app, max_bytes: int = MAX_BODY) -> None:
        self.app = app
        self.max_bytes = max_bytes

    async def __call__(self, scope, receive, send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        declared = dict(scope.get("headers") or []).get(b"content-length")
        if declared is not None:
            try:
                size = int(declared)
            except ValueError:
                size = -1
            if not 0 <= size <= self.max_bytes:
                await self._refuse(send)
                return
        seen = 0
        started = False

        async def counted():
            nonlocal seen
            message = await receive()
            if message["type"] == "http.request":
                seen += len(message.get("body", b""))
                if seen > self.max_bytes:
                    raise _TooLarge
            return message

        async def watched(message):
            nonlocal started
            started = started or message["type"] == "http.response.start"
            await send(message)

        try:
            await self.app(scope, counted, watched)
        except _TooLarge:
            if not started:
                await self._refuse(send)

    async def _refuse(self, send) -> None:
        body = json.dumps({"error": f"request body exceeds {self.max_bytes} bytes"}).encode()
        await send({"type": "http.response.start", "status": 413,
                    "headers": [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode()),
                                (b"connection", b"close")]})
        await send({"type": "http.response.body", "body": body})
