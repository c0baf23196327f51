"""Unbounded input and the console's defences (issue 14, items 6 and 7), with the real app
served by uvicorn on a socket where the transport matters: body limits, /metrics labels,
X-Forwarded-For, Content-Security-Policy, sign-in from another site, scrypt off the event loop."""

from __future__ import annotations

import socket
import threading
import time

import httpx
import pytest

from controller.enrolment_server import EnrolmentServer
from controller.web.app import create_app
from controller.web.body_limit import MAX_BODY
from controller.web.serve import ConsoleServer
from tests.console.conftest import PASSWORDS, console_env, login

__all__ = ["console_env"]


def _raw(url: str, head: bytes, body_chunks, timeout: float = 10.0) -> bytes:
    """Send a request by hand (headers, then body parts as long as the server reads) and return
    the start of the answer."""
    host, port = url.removeprefix("http://").split("/")[0].split(":")
    with socket.create_connection((host, int(port)), timeout=timeout) as s:
        s.sendall(head)
        try:
            for chunk in body_chunks:
                s.sendall(chunk)
        except OSError:
            pass  # the server answered and closed: what we want
        return s.recv(200)


@pytest.fixture
def served(console_env):
    made: list[ConsoleServer] = []

    def serve(**kw) -> str:
        server = ConsoleServer(create_app(console_env, start_poller=False), "127.0.0.1:0", **kw)
        made.append(server)
        return server.start()

    yield serve
    for s in made:
        s.stop()


def test_a_150_mb_enrolment_post_is_refused_with_413_before_reading(enrol_ctx):
    server = EnrolmentServer(enrol_ctx).start()
    try:
        head = (b"POST /api/v1/enroll HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
                b"Content-Length: 157286400\r\n\r\n")
        started = time.monotonic()
        answer = _raw(server.url, head, [b"{" * 65536] * 4)
        assert answer.startswith(b"HTTP/1.1 413"), answer
        assert time.monotonic() - started < 5
        chunked = b"POST /api/v1/enroll HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n"
        part = b"10000\r\n" + b"x" * 0x10000 + b"\r\n"
        answer = _raw(server.url, chunked, [part] * (MAX_BODY // 0x10000 + 4))
        assert answer.startswith(b"HTTP/1.1 413"), answer
    finally:
        server.stop()


def test_every_console_route_has_the_body_limit(served):
    url = served()
    head = b"POST /login HTTP/1.1\r\nHost: x\r\nContent-Length: 157286400\r\n\r\n"
    assert _raw(url, head, [b"a" * 65536]).startswith(b"HTTP/1.1 413")


def test_metrics_labels_only_for_known_routes(console_env):
    from starlette.testclient import TestClient

    app = create_app(console_env, start_poller=False)
    with TestClient(app) as anon:
        for i in range(300):
            anon.get(f"/no-such-page-{i}")
            anon.get(f"/api/v1/no-such-{i}")
    ada = login(app, "ada")
    try:
        text = ada.get("/metrics").text
    finally:
        ada.__exit__(None, None, None)
    routes = {line.split('route="')[1].split('"')[0] for line in text.splitlines() if 'route="' in line}
    assert "other" in routes and not any("no-such" in r for r in routes)
    assert len(routes) < 40


def test_forwarded_for_is_ignored_unless_from_a_configured_proxy(served, console_env):
    def source(url: str) -> str:
        with httpx.Client(base_url=url) as c:
            c.post("/login", data={"name": "vera", "password": "wrong-password"},
                   headers={"X-Forwarded-For": "203.0.113.9"})
        return console_env.accounts.audit_trail(target="vera")["items"][0]["detail"]["source"]

    assert source(served()) == "127.0.0.1"
    assert source(served(trusted_proxies=("127.0.0.1",))) == "203.0.113.9"


def test_pages_carry_a_content_security_policy_with_a_nonce(served):
    with httpx.Client(base_url=served()) as c:
        r = c.get("/login")
    csp = r.headers["content-security-policy"]
    assert "script-src 'self' 'nonce-" in csp and "frame-ancestors 'none'" in csp and "unsafe-inline" not in csp


def test_sign_in_from_another_site_is_refused(served):
    with httpx.Client(base_url=served()) as c:
        r = c.post("/login", data={"name": "vera", "password": PASSWORDS["vera"]},
                   headers={"Origin": "https://evil.example"})
        assert r.status_code == 403 and "kc_session" not in r.cookies
        r = c.post("/login", data={"name": "vera", "password": PASSWORDS["vera"]},
                   headers={"Sec-Fetch-Site": "cross-site"})
        assert r.status_code == 403
        origin = str(c.base_url).rstrip("/")
        r = c.post("/login", data={"name": "vera", "password": PASSWORDS["vera"]}, headers={"Origin": origin})
        assert r.status_code == 303 and "kc_session" in r.cookies


def test_parallel_sign_ins_do_not_stall_the_console(served):
    """40 sign-ins (one scrypt each) in flight: /healthz, asked after all of them, is answered
    while some are still hashing (with scrypt on the event loop it would wait for all 40).
    The latency itself is measured by ``benchmarks/security_bench.py --logins``."""
    url = served()
    finished: list[int] = []

    def sign_in(i: int) -> None:
        with httpx.Client(base_url=url, timeout=120) as c:
            c.post("/login", data={"name": "vera", "password": "wrong-password"})
        finished.append(i)

    threads = [threading.Thread(target=sign_in, args=(i,)) for i in range(40)]
    for t in threads:
        t.start()
    with httpx.Client(base_url=url, timeout=120) as c:
        assert c.get("/healthz").status_code == 200
        answered_with_pending = 40 - len(finished)
    for t in threads:
        t.join()
    assert answered_with_pending > 0
