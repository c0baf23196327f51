"""Who is asking and may they: session cookies, bearer tokens, roles and CSRF checks per request."""

from __future__ import annotations

import hmac
from urllib.parse import urlsplit

from starlette.requests import Request

from controller.web.accounts import Accounts, AuthFailed, Principal

SESSION_COOKIE = "kc_session"
CSRF_HEADER = "x-csrf-token"
SAFE_METHODS = ("GET", "HEAD", "OPTIONS")


class HTTPProblem(Exception):
    """An error answered with ``status`` and a message for the caller (never a 500)."""

    def __init__(self, status: int, message: str, *, key: str = "") -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.key = key


def principal(request: Request) -> Principal | None:
    """The caller from ``Authorization: Bearer kt_...`` or the session cookie, or None."""
    accounts: Accounts = request.app.state.console.accounts
    header = request.headers.get("authorization", "")
    if header:
        scheme, _, value = header.partition(" ")
        if scheme.lower() != "bearer" or not value.strip():
            raise HTTPProblem(401, "Authorization must be 'Bearer <API token>'")
        try:
            return accounts.token(value.strip())
        except AuthFailed as exc:
            raise HTTPProblem(401, str(exc)) from None
    return accounts.session(request.cookies.get(SESSION_COOKIE, ""))


def same_origin(request: Request) -> bool:
    """False for a request a browser sent from another site (``Origin``/``Sec-Fetch-Site``).

    Sign-in has no session and so no CSRF token yet; this stops a foreign page from signing the
    operator's browser into the attacker's account (login CSRF). Browsers always send ``Origin``
    on a cross-origin POST; clients that are not browsers send neither header.
    """
    if request.headers.get("sec-fetch-site", "same-origin") not in ("same-origin", "none"):
        return False
    origin = request.headers.get("origin")
    if origin is None:
        return True
    return urlsplit(origin).netloc == request.headers.get("host", "") and origin != "null"


def require(request: Request, role: str = "viewer", *, form_csrf: str | None = None) -> Principal:
    """The caller, who must hold ``role``; mutating session requests must carry the CSRF token.

    Bearer tokens are not sent by browsers on their own, so they need no CSRF token.
    """
    who = principal(request)
    if who is None:
        raise HTTPProblem(401, "sign in or send an API token")
    if not who.can(role):
        raise HTTPProblem(403, f"role {who.role} may not do this (needs {role})", key="error.forbidden")
    if who.via == "session" and request.method not in SAFE_METHODS:
        sent = form_csrf if form_csrf is not None else request.headers.get(CSRF_HEADER, "")
        if not sent or not hmac.compare_digest(sent, who.csrf):
            raise HTTPProblem(403, "missing or wrong CSRF token; reload the page", key="error.csrf")
    return who
