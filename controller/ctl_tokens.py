"""``kioskctl token issue``: one-time enrolment tokens for technicians.

Hooked into kioskctl by ``register(subparsers)``; the parsed namespace carries ``handler``.
The token is printed once (it is stored only as a hash) together with the CA fingerprint the
technician passes to ``kiosk-provision enroll --ca-hash`` so the kiosk can pin the right fleet.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

from controller import enrolment_service, fleet_clock
from foundation.errors import KioskError


def register(subparsers) -> None:
    tok = subparsers.add_parser("token", help="enrolment tokens for new kiosks")
    tsub = tok.add_subparsers(dest="token_command", required=True)
    iss = tsub.add_parser("issue", help="issue a one-time enrolment token bound to a site")
    iss.add_argument("--site", required=True, help="the community site the kiosk will serve")
    iss.add_argument("--kiosk-id", default=None, help="bind the token to this kiosk id too")
    iss.add_argument("--ttl", type=float, default=enrolment_service.DEFAULT_TTL, help="seconds until it expires (3600)")
    iss.add_argument("--ca-file", type=Path, default=None,
                     help="fleet CA certificate, for the fingerprint (default DATA_DIR/../ca/ca.crt.pem)")
    iss.add_argument("--json", action="store_true", default=argparse.SUPPRESS, help="machine-readable output")
    iss.set_defaults(handler=cmd_issue)


def _ca_fingerprint(path: Path) -> str:
    from cryptography import x509

    from provisioning.pki import fingerprint

    try:
        return fingerprint(x509.load_pem_x509_certificate(path.read_bytes()))
    except (OSError, ValueError):
        return ""


def cmd_issue(args: argparse.Namespace, *, now: float | None = None) -> int:
    data_dir = Path(getattr(args, "data_dir", "controller-data"))
    try:
        from controller.ctl import fleet_db

        # The fleet database (--config/--database: PostgreSQL), its schema made if the controller
        # has not started yet: tokens may be issued before its first start.
        conn = fleet_db(argparse.Namespace(**{**vars(args), "data_dir": data_dir})).open_migrated()
        tok = enrolment_service.issue_token(conn, args.site, kiosk_id=args.kiosk_id, ttl=args.ttl,
                                    now=time.time() if now is None else now, issued_by="kioskctl")
    except KioskError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    ca_hash = _ca_fingerprint(args.ca_file or data_dir.parent / "ca" / "ca.crt.pem")
    if getattr(args, "json", False):
        print(json.dumps({**tok, "ca_hash": ca_hash}, ensure_ascii=False))
        return 0
    expires = fleet_clock.recorded(conn).show(tok["expires_at"])
    print(f"token:    {tok['token']}")
    print(f"site:     {tok['site']}" + (f"  kiosk: {tok['kiosk_id']}" if tok["kiosk_id"] else ""))
    print(f"expires:  {expires} (single use)")
    if ca_hash:
        print(f"ca-hash:  {ca_hash}")
    return 0
