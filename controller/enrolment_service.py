"""Kiosk enrolment: one-time tokens in the controller database, CSR checks, signing with the fleet CA.

A technician gets a token (``kioskctl token issue --site S``): single use, expires after an hour,
bound to a site (and optionally a kiosk id). The kiosk generates its key on the device and sends
a CSR with the token to ``POST /api/v1/enroll``; every check passes before anything is signed, so
a refused request issues nothing. ``POST /api/v1/renew`` gives an enrolled kiosk a new
certificate, proven by a signature with its current (unrevoked, unexpired) key.

Only the SHA-256 of a token is stored; tokens, CSRs and keys never go to the log.
"""

from __future__ import annotations

import base64
import datetime as dt
import hashlib
import json
import logging
import secrets
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec

from controller import kiosk_sites, pg_parts, sql_dialect
from foundation.errors import ConfigError, EnrolmentRefused
from foundation.secure_files import site_resident_key
from foundation.settings import check_kiosk_id
from provisioning import pki
from provisioning.fleet_ca import CertIndex

log = logging.getLogger(__name__)

DEFAULT_TTL = 3600
TOKEN_PREFIX = "ket1."
RENEW_MAX_SKEW = 300.0

SCHEMA = """
CREATE TABLE IF NOT EXISTS enrol_tokens (
    token_hash TEXT PRIMARY KEY,
    site TEXT NOT NULL,
    kiosk_id TEXT,
    issued_at REAL NOT NULL,
    expires_at REAL NOT NULL,
    issued_by TEXT NOT NULL DEFAULT '',
    used_at REAL,
    used_by TEXT,
    serial TEXT
);
CREATE TABLE IF NOT EXISTS kiosk_certs (
    serial TEXT PRIMARY KEY,
    kiosk_id TEXT NOT NULL,
    site TEXT NOT NULL,
    not_before REAL NOT NULL,
    not_after REAL NOT NULL,
    revoked_at REAL
);
CREATE INDEX IF NOT EXISTS kiosk_certs_kiosk ON kiosk_certs(kiosk_id);
"""

STATUS = {"bad_request": 400, "kiosk_id_invalid": 400, "csr_invalid": 400, "csr_signature": 400,
          "csr_key_type": 400, "csr_subject": 400, "token_unknown": 401, "token_used": 403,
          "token_expired": 403, "token_site": 403, "token_kiosk": 403, "kiosk_site_conflict": 409, "kiosk_active": 409,
          "cert_untrusted": 403, "cert_expired": 403, "cert_revoked": 403, "renew_signature": 403,
          "renew_clock": 403}


def ensure_schema(conn: Any) -> None:
    """The token table and the certificates' sites (``controller.kiosk_sites``), in the fleet
    database (SQLite here; PostgreSQL: ``controller.pg_parts``)."""
    if sql_dialect.name(conn) == sql_dialect.POSTGRESQL:
        pg_parts.migrate(conn, "enrolment")
        return
    with conn:
        conn.executescript(SCHEMA)


def token_hash(token: str) -> str:
    return hashlib.sha256(token.strip().encode("utf-8")).hexdigest()


def issue_token(conn: Any, site: str, *, kiosk_id: str | None = None, ttl: float = DEFAULT_TTL,
                now: float, issued_by: str = "", rand: Callable[[int], str] = secrets.token_urlsafe) -> dict:
    """Create a one-time token; the token itself is returned once and never stored."""
    if not site or not site.strip():
        raise ConfigError("a token must be bound to a site", field="site")
    if kiosk_id:
        check_kiosk_id(kiosk_id)
    if not 0 < ttl <= 7 * 86400:
        raise ConfigError(f"must be between 1 and 604800 seconds, got {ttl!r}", field="ttl")
    token = TOKEN_PREFIX + rand(24)
    h = token_hash(token)
    ensure_schema(conn)
    with conn:
        conn.execute("INSERT INTO enrol_tokens (token_hash, site, kiosk_id, issued_at, expires_at, issued_by) "
                     "VALUES (?,?,?,?,?,?)", (h, site, kiosk_id, now, now + ttl, issued_by))
    log.info("enrolment token issued", extra={"fields": {"site": site, "kiosk_id": kiosk_id or "-",
                                                         "token": h[:8], "ttl": ttl}})
    return {"token": token, "site": site, "kiosk_id": kiosk_id, "expires_at": now + ttl}


@dataclass
class EnrolmentContext:
    """What the endpoint needs: the controller DB, the loaded CA and index, what kiosks are told."""

    conn: Any  # the fleet database (``FleetDb.connect``): ``with conn:`` is one transaction
    ca: pki.CA
    index: CertIndex
    broker_url: str
    controller_public_key: str
    clock: Callable[[], float]
    on_issue: Callable[[x509.Certificate], None] = lambda _c: None
    on_revoke: Callable[[], object] = lambda: None  # rewrite the CRL after a certificate was retired (result unused)
    resident_ref_key: str = ""  # hex, the fleet's; each kiosk gets its site's key derived from it
    lock: threading.Lock = field(default_factory=threading.Lock)

    def __post_init__(self) -> None:
        ensure_schema(self.conn)


def _field(body: dict, name: str) -> str:
    value = body.get(name)
    if not isinstance(value, str) or not value.strip():
        raise EnrolmentRefused("bad_request", f"{name!r} is missing or not a string")
    return value.strip()


def _reply(ctx: EnrolmentContext, cert: x509.Certificate, site: str, now: float) -> dict:
    reply = {
        "v": 1, "kiosk_id": pki.common_name(cert.subject), "site": site,
        "certificate": pki.cert_pem(cert).decode(), "ca_certificate": pki.cert_pem(ctx.ca.cert).decode(),
        "ca_fingerprint": pki.fingerprint(ctx.ca.cert), "serial": format(cert.serial_number, "x"),
        "not_after": cert.not_valid_after_utc.timestamp(), "broker": ctx.broker_url,
        "controller_public_key": ctx.controller_public_key, "server_time": now,
        # Only this site's key (derived from the fleet's), never the fleet-wide one.
        **({"resident_ref_key": site_resident_key(bytes.fromhex(ctx.resident_ref_key), site).hex()}
           if ctx.resident_ref_key else {}),
    }
    # Signed by the fleet CA: a kiosk that pinned the CA's hash trusts these fields from no one else.
    return {**reply, "endorsement": pki.endorse(ctx.ca, reply)}


def enroll(ctx: EnrolmentContext, body: dict) -> dict:
    """Check token and CSR, then sign; raises EnrolmentRefused (nothing issued) on any problem."""
    if not isinstance(body, dict):
        raise EnrolmentRefused("bad_request", "the request body must be a JSON object")
    kiosk_id, site, token, csr_pem = (_field(body, n) for n in ("kiosk_id", "site", "token", "csr"))
    try:
        check_kiosk_id(kiosk_id)
    except ConfigError as exc:
        raise EnrolmentRefused("kiosk_id_invalid", str(exc)) from None
    h = token_hash(token)
    with ctx.lock, ctx.conn:
        now = ctx.clock()
        row = ctx.conn.execute("SELECT site, kiosk_id, expires_at, used_at FROM enrol_tokens WHERE token_hash=?",
                               (h,)).fetchone()
        try:
            if row is None:
                raise EnrolmentRefused("token_unknown", "this enrolment token is not known to the controller "
                                       "(typo? issued by another controller?)")
            t_site, t_kiosk, expires_at, used_at = row
            if used_at is not None:
                raise EnrolmentRefused("token_used", "this enrolment token was already used; ask for a new one")
            if now > expires_at:
                raise EnrolmentRefused("token_expired", "this enrolment token has expired (tokens last one hour); "
                                       "ask for a new one, and check the controller's clock")
            if t_site != site:
                raise EnrolmentRefused("token_site", f"this token is for site {t_site!r}, not {site!r}")
            if t_kiosk and t_kiosk != kiosk_id:
                raise EnrolmentRefused("token_kiosk", f"this token is for kiosk {t_kiosk!r}, not {kiosk_id!r}")
            csr = pki.parse_csr(csr_pem, kiosk_id)
            # Only certificates that still work bind an id: a revoked or expired kiosk's id is free.
            active = ctx.index.active(kiosk_id, now)
            if active and active[0]["site"] != site:
                raise EnrolmentRefused("kiosk_site_conflict", f"kiosk {kiosk_id!r} is enrolled at site "
                                       f"{active[0]['site']!r}; revoke it there first")
            if active and not t_kiosk:
                # A site token names no kiosk: it must not mint a clone of one that is in service.
                raise EnrolmentRefused("kiosk_active", f"kiosk {kiosk_id!r} already has a valid certificate; "
                                       "renew it from the kiosk, revoke it first, or use a token issued for "
                                       "this kiosk id to replace it")
        except EnrolmentRefused as exc:
            log.warning("enrolment refused", extra={"fields": {"reason": exc.reason, "kiosk_id": kiosk_id,
                                                               "site": site, "token": h[:8]}})
            raise
        when = dt.datetime.fromtimestamp(now, dt.UTC)
        cert = ctx.ca.issue_client(kiosk_id, csr.public_key(), when)
        serial = format(cert.serial_number, "x")
        cur = ctx.conn.execute("UPDATE enrol_tokens SET used_at=?, used_by=?, serial=? "
                               "WHERE token_hash=? AND used_at IS NULL", (now, kiosk_id, serial, h))
        if cur.rowcount != 1:  # another request won the race for the same token
            raise EnrolmentRefused("token_used", "this enrolment token was already used; ask for a new one")
        ctx.index.record(cert, site)
        # A token issued for this very id replaces the kiosk (new SD card): the old certificate retires.
        replaced = [r for c in active for r in ctx.index.revoke(kiosk_id, when, serial=c["serial"], reason="replaced")]
        # Every controller instance files the kiosk by this record (in the same transaction as the token).
        kiosk_sites.copy_kiosk(ctx.conn, ctx.index, kiosk_id)
    ctx.on_issue(cert)
    if replaced:
        ctx.on_revoke()
    log.info("kiosk enrolled", extra={"fields": {"kiosk_id": kiosk_id, "site": site, "serial": serial}})
    return _reply(ctx, cert, site, now)


def renew_message(csr_pem: str, timestamp: float) -> bytes:
    """What a kiosk signs with its current key to ask for a renewal."""
    return json.dumps({"csr": csr_pem, "ts": timestamp}, sort_keys=True, separators=(",", ":")).encode()


def renew(ctx: EnrolmentContext, body: dict) -> dict:
    """New certificate for a kiosk that proves possession of its current, valid certificate."""
    if not isinstance(body, dict):
        raise EnrolmentRefused("bad_request", "the request body must be a JSON object")
    cert_pem, _, sig = (_field(body, n) for n in ("certificate", "csr", "signature"))
    csr_pem = body["csr"]  # unstripped: these exact characters were signed
    ts = body.get("ts")
    if isinstance(ts, bool) or not isinstance(ts, int | float):
        raise EnrolmentRefused("bad_request", "'ts' is missing or not a number")
    now = ctx.clock()
    try:
        current = x509.load_pem_x509_certificate(cert_pem.encode("ascii", "replace"))
    except ValueError:
        raise EnrolmentRefused("bad_request", "'certificate' is not a PEM certificate") from None
    ctx.ca.verify_issued(current, dt.datetime.fromtimestamp(now, dt.UTC))
    if ctx.index.is_revoked(current.serial_number):
        raise EnrolmentRefused("cert_revoked", "this certificate is revoked; enrol again with a new token")
    kiosk_id = pki.common_name(current.subject)
    if abs(now - ts) > RENEW_MAX_SKEW:
        raise EnrolmentRefused("renew_clock", f"request time is {now - ts:+.0f} s off the controller's clock; "
                               "set the kiosk's clock (NTP)")
    pub = current.public_key()
    try:
        if not isinstance(pub, ec.EllipticCurvePublicKey):
            raise InvalidSignature
        pub.verify(base64.b64decode(sig), renew_message(csr_pem, ts), ec.ECDSA(hashes.SHA256()))
    except (InvalidSignature, ValueError):
        raise EnrolmentRefused("renew_signature", "the renewal is not signed by the current certificate's key") from None
    csr = pki.parse_csr(csr_pem, kiosk_id)
    site = ctx.index.site_of(kiosk_id) or ""
    with ctx.lock:
        when = dt.datetime.fromtimestamp(now, dt.UTC)
        cert = ctx.ca.issue_client(kiosk_id, csr.public_key(), when)
        ctx.index.record(cert, site)
        # The renewed certificate retires the one it replaces (a copy of the old key is worth nothing
        # once the broker has re-read the CRL); the running connection is not cut by that.
        ctx.index.revoke(kiosk_id, when, serial=format(current.serial_number, "x"), reason="superseded")
        kiosk_sites.copy_kiosk(ctx.conn, ctx.index, kiosk_id)
    ctx.on_issue(cert)
    ctx.on_revoke()
    log.info("kiosk certificate renewed", extra={"fields": {"kiosk_id": kiosk_id, "serial": format(cert.serial_number, "x")}})
    return _reply(ctx, cert, site, now)


def routes(get_ctx: Callable[[], EnrolmentContext]) -> list:
    """Starlette routes: POST /api/v1/enroll and POST /api/v1/renew (JSON in, JSON out)."""
    from starlette.concurrency import run_in_threadpool
    from starlette.requests import Request
    from starlette.responses import JSONResponse
    from starlette.routing import Route

    def endpoint(fn):
        async def handle(request: Request) -> JSONResponse:
            try:
                body = json.loads(await request.body())
            except (ValueError, UnicodeDecodeError):
                return JSONResponse({"error": "bad_request", "message": "the body is not JSON"}, status_code=400)
            try:
                return JSONResponse(await run_in_threadpool(fn, get_ctx(), body))
            except EnrolmentRefused as exc:
                message = str(exc).removeprefix(exc.reason + ": ")
                return JSONResponse({"error": exc.reason, "message": message},
                                    status_code=STATUS.get(exc.reason, 400))
        return handle

    return [Route("/api/v1/enroll", endpoint(enroll), methods=["POST"]),
            Route("/api/v1/renew", endpoint(renew), methods=["POST"])]
