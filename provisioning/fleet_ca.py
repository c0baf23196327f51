"""The fleet folder on the operator's side: CA files, issued-certificate index, CRL, broker files.

Layout under ``DIR`` (created by ``kiosk-provision init-fleet``)::

    ca/ca.key.pem           CA key, encrypted with the fleet passphrase (0600)
    ca/ca.crt.pem           CA certificate (given to every kiosk)
    ca/crl.pem              certificate revocation list (read by the broker)
    ca/issued.sqlite3       every certificate issued: serial, kiosk, site, validity, revocation
    broker/server.*.pem     the broker's TLS certificate and key (0600)
    broker/mosquitto.conf   TLS listener, CRL, ACL; broker/acl is the topic ACL
    controller/client.*.pem the controller's client certificate (CN ``_controller``) and key
    controller/controller_ed25519.pem  the controller's Ed25519 command-signing key (PKCS8, 0600)
    controller/NAME/        one controller instance of several (``--instance NAME``): client.*.pem
                            (CN ``controller-NAME``) and controller.toml; all share the signing key
    ca/resident-ref.key     the key kiosks derive residents' one-way references with (0600); given to
                            kiosks at enrolment, never stored in the controller's database
"""

from __future__ import annotations

import datetime as dt
import logging
import sqlite3
import threading
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec

from foundation.errors import ProvisioningError
from foundation.secure_files import new_resident_key, write_atomic, write_private
from foundation.settings import CONTROLLER_PREFIX, ControllerConfig, check_kiosk_id, from_mapping
from provisioning import broker_conf, pki

log = logging.getLogger(__name__)

INDEX_SCHEMA = """
CREATE TABLE IF NOT EXISTS certs (
    serial TEXT PRIMARY KEY,
    kiosk_id TEXT NOT NULL,
    site TEXT NOT NULL,
    fingerprint TEXT NOT NULL,
    not_before REAL NOT NULL,
    not_after REAL NOT NULL,
    revoked_at REAL,
    revoke_reason TEXT NOT NULL DEFAULT ''
);
CREATE INDEX IF NOT EXISTS certs_kiosk ON certs(kiosk_id);
"""


@dataclass(frozen=True)
class Layout:
    root: Path

    ca_key = property(lambda s: s.root / "ca" / "ca.key.pem")
    resident_key = property(lambda s: s.root / "ca" / "resident-ref.key")
    ca_cert = property(lambda s: s.root / "ca" / "ca.crt.pem")
    crl = property(lambda s: s.root / "ca" / "crl.pem")
    index = property(lambda s: s.root / "ca" / "issued.sqlite3")
    server_key = property(lambda s: s.root / "broker" / "server.key.pem")
    server_cert = property(lambda s: s.root / "broker" / "server.crt.pem")
    acl = property(lambda s: s.root / "broker" / "acl")
    mosquitto_conf = property(lambda s: s.root / "broker" / "mosquitto.conf")
    controller_key = property(lambda s: s.root / "controller" / "client.key.pem")
    controller_cert = property(lambda s: s.root / "controller" / "client.crt.pem")
    # The name contract/signing.py loads from the controller's data_dir (DIR/controller).
    signing_key = property(lambda s: s.root / "controller" / "controller_ed25519.pem")
    signing_pub = property(lambda s: s.root / "controller" / "signing_key.pub")
    controller_toml = property(lambda s: s.root / "controller" / "controller.toml")

    def instance_dir(self, name: str) -> Path:
        return self.root / "controller" / name

    def listener(self, port: int, bind: str = "") -> list[str]:
        return broker_conf.listener_lines(port=port, bind=bind, ca_file=self.ca_cert, cert_file=self.server_cert,
                                          key_file=self.server_key, crl_file=self.crl, acl_file=self.acl)


def signing_public_text(key) -> str:
    """The controller's Ed25519 public key as kiosks pin it: base64 of the raw 32 bytes."""
    import base64

    raw = key.public_key().public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    return base64.b64encode(raw).decode()


def init_fleet(root: Path, passphrase: bytes, *, hosts: list[str], port: int = 8883,
               broker_url: str = "", now: dt.datetime | None = None, instances: tuple[str, ...] = (),
               database: str = "", progress: Callable[[str], None] = lambda _m: None) -> Layout:
    """Create CA, broker and controller identities, signing key and broker config under ``root``;
    with ``instances`` also one certificate and config per controller instance (on ``database``)."""
    now = now or pki.utcnow()
    lay = Layout(Path(root))
    for name in instances:
        _instance_config(name, database, broker_url or f"mqtts://{hosts[0] if hosts else 'localhost'}:{port}", lay)
    if lay.ca_key.exists():
        raise ProvisioningError(f"{lay.ca_key} exists: this folder already holds a fleet (use another --data-dir)")
    if not hosts:
        raise ProvisioningError("give at least one --host name or address for the broker certificate")
    progress("creating the fleet CA (EC P-256)")
    ca_key, ca_cert = pki.create_ca(now)
    write_private(lay.ca_key, pki.key_pem(ca_key, passphrase), overwrite=False)
    write_atomic(lay.ca_cert, pki.cert_pem(ca_cert))
    ca = pki.CA(ca_key, ca_cert)
    progress(f"issuing the broker certificate for {', '.join(hosts)}")
    server_key = pki.new_ec_key()
    write_private(lay.server_key, pki.key_pem(server_key))
    write_atomic(lay.server_cert, pki.cert_pem(ca.issue_server(server_key.public_key(), hosts, now)))
    progress("issuing the controller's client certificate (_controller)")
    index = CertIndex(lay.index)
    ctl_key = pki.new_ec_key()
    ctl_cert = ca.issue_client(broker_conf.CONTROLLER_CN, ctl_key.public_key(), now, days=pki.SERVER_DAYS)
    index.record(ctl_cert, "_fleet")
    write_private(lay.controller_key, pki.key_pem(ctl_key))
    write_atomic(lay.controller_cert, pki.cert_pem(ctl_cert))
    progress("creating the controller's Ed25519 command-signing key")
    sk = pki.new_signing_key()
    write_private(lay.signing_key, pki.key_pem(sk))
    write_atomic(lay.signing_pub, signing_public_text(sk) + "\n")
    progress("creating the key for residents' one-way references")
    write_private(lay.resident_key, new_resident_key() + "\n", overwrite=False)
    progress("writing the CRL, the ACL and mosquitto.conf")
    write_crl(lay, ca, index, now)
    index.close()
    url = broker_url or f"mqtts://{hosts[0]}:{port}"
    for name in instances:
        progress(f"issuing the client certificate of controller instance {name} ({CONTROLLER_PREFIX}{name})")
        index = CertIndex(lay.index)
        _issue_instance(lay, ca, index, name, url, database, now)
        index.close()
    write_atomic(lay.acl, broker_conf.acl_text(instances))
    write_atomic(lay.mosquitto_conf, broker_conf.mosquitto_conf(lay.listener(port)))
    write_atomic(lay.controller_toml, "\n".join([
        "# Controller settings for this fleet (see docs/provisioning.md).",
        f'broker = "{url}"',
        f'data_dir = "{lay.root / "controller"}"',
        f'ca_file = "{lay.ca_cert}"',
        f'cert_file = "{lay.controller_cert}"',
        f'key_file = "{lay.controller_key}"',
        "",
    ]))
    log.info("fleet initialised", extra={"fields": {"dir": str(lay.root), "ca": pki.fingerprint(ca_cert)}})
    return lay


def _instance_config(name: str, database: str, broker_url: str, lay: Layout) -> str:
    """controller.toml of one instance, checked as the controller will read it (a bad name or a
    database that is not PostgreSQL fails here, naming the field, before anything is issued)."""
    d = lay.instance_dir(name)
    text = "\n".join([
        f"# Controller instance {name} of this fleet (docs/scale-out.md): all instances share the",
        "# PostgreSQL database and the command-signing key; each has its own certificate.",
        f'broker = "{broker_url}"',
        f'data_dir = "{d}"',
        f'instance = "{name}"',
        f'database = "{database}"',
        f'ca_file = "{lay.ca_cert}"',
        f'cert_file = "{d / "client.crt.pem"}"',
        f'key_file = "{d / "client.key.pem"}"',
        f'signing_key = "{lay.signing_key}"',
        "",
    ])
    from_mapping(ControllerConfig, {"broker": broker_url, "data_dir": str(d), "instance": name, "database": database})
    return text


def _issue_instance(lay: Layout, ca: pki.CA, index: CertIndex, name: str, broker_url: str, database: str,
                    now: dt.datetime) -> Path:
    text = _instance_config(name, database, broker_url, lay)
    d = lay.instance_dir(name)
    key = pki.new_ec_key()
    cert = ca.issue_client(CONTROLLER_PREFIX + name, key.public_key(), now, days=pki.SERVER_DAYS)
    index.record(cert, "_fleet")
    write_private(d / "client.key.pem", pki.key_pem(key))
    write_atomic(d / "client.crt.pem", pki.cert_pem(cert))
    write_atomic(d / "controller.toml", text)
    return d / "controller.toml"


def add_controller_instance(lay: Layout, ca: pki.CA, name: str, *, broker_url: str, database: str,
                            now: dt.datetime) -> Path:
    """One more controller instance for a fleet: its certificate, its controller.toml, and the ACL
    rewritten with every instance the index holds (reload the broker: SIGHUP). Returns the toml."""
    index = CertIndex(lay.index)
    try:
        if lay.instance_dir(name).joinpath("client.crt.pem").exists():
            raise ProvisioningError(f"controller instance {name} exists already ({lay.instance_dir(name)})")
        toml = _issue_instance(lay, ca, index, name, broker_url, database, now)
        write_atomic(lay.acl, broker_conf.acl_text(index.controller_instances()))
    finally:
        index.close()
    return toml


def load_ca(lay: Layout, passphrase: bytes) -> pki.CA:
    try:
        key_data = lay.ca_key.read_bytes()
        cert = x509.load_pem_x509_certificate(lay.ca_cert.read_bytes())
    except FileNotFoundError as exc:
        raise ProvisioningError(f"{exc.filename} not found: is --data-dir the folder init-fleet created?") from None
    key = pki.load_key_pem(key_data, passphrase, what=f"the CA key {lay.ca_key}")
    if not isinstance(key, ec.EllipticCurvePrivateKey):
        raise ProvisioningError(f"the CA key {lay.ca_key} is not an EC key (init-fleet makes EC P-256)")
    return pki.CA(key, cert)


class CertIndex:
    """Every certificate the CA issued, so revocation and renewal know serials and owners."""

    def __init__(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        self.conn = sqlite3.connect(path, timeout=10, check_same_thread=False)
        self.conn.execute("PRAGMA journal_mode=WAL")
        self.conn.execute("PRAGMA synchronous=NORMAL")
        self.conn.executescript(INDEX_SCHEMA)
        self.lock = threading.Lock()

    def close(self) -> None:
        self.conn.close()

    def record(self, cert: x509.Certificate, site: str) -> None:
        with self.lock, self.conn:
            self.conn.execute(
                "INSERT INTO certs (serial, kiosk_id, site, fingerprint, not_before, not_after) VALUES (?,?,?,?,?,?)",
                (format(cert.serial_number, "x"), pki.common_name(cert.subject), site, pki.fingerprint(cert),
                 cert.not_valid_before_utc.timestamp(), cert.not_valid_after_utc.timestamp()))

    def controller_instances(self) -> list[str]:
        """Names of the controller instances with a certificate not revoked (``a`` for ``controller-a``)."""
        rows = self.conn.execute("SELECT DISTINCT kiosk_id FROM certs WHERE site = '_fleet' AND revoked_at IS NULL")
        return sorted(r[0].removeprefix(CONTROLLER_PREFIX) for r in rows if r[0].startswith(CONTROLLER_PREFIX))

    def site_of(self, kiosk_id: str) -> str | None:
        row = self.conn.execute("SELECT site FROM certs WHERE kiosk_id=? ORDER BY not_before DESC LIMIT 1",
                                (kiosk_id,)).fetchone()
        return row[0] if row else None

    def active(self, kiosk_id: str, now: float) -> list[dict]:
        """The kiosk's certificates that still work: not revoked, not expired (newest first)."""
        return [c for c in reversed(self.certs(kiosk_id)) if c["revoked_at"] is None and c["not_after"] > now]

    def is_revoked(self, serial: int) -> bool:
        row = self.conn.execute("SELECT revoked_at FROM certs WHERE serial=?", (format(serial, "x"),)).fetchone()
        return row is None or row[0] is not None

    def revoke(self, kiosk_id: str, now: dt.datetime, *, serial: str | None = None, reason: str = "") -> list[str]:
        """Mark the kiosk's unrevoked certificates (or just ``serial``) revoked; returns the serials."""
        q = "SELECT serial FROM certs WHERE kiosk_id=? AND revoked_at IS NULL"
        args: tuple = (kiosk_id,)
        if serial:
            q += " AND serial=?"
            args += (serial.lower().removeprefix("0x"),)
        with self.lock, self.conn:
            serials = [r[0] for r in self.conn.execute(q, args)]
            self.conn.executemany("UPDATE certs SET revoked_at=?, revoke_reason=? WHERE serial=?",
                                  [(now.timestamp(), reason, s) for s in serials])
        return serials

    def revoked(self) -> list[tuple[int, dt.datetime]]:
        rows = self.conn.execute("SELECT serial, revoked_at FROM certs WHERE revoked_at IS NOT NULL ORDER BY revoked_at")
        return [(int(s, 16), dt.datetime.fromtimestamp(t, dt.UTC)) for s, t in rows]

    def certs(self, kiosk_id: str | None = None) -> list[dict]:
        q, args = "SELECT * FROM certs", ()
        if kiosk_id:
            q, args = q + " WHERE kiosk_id=?", (kiosk_id,)
        cur = self.conn.execute(q + " ORDER BY not_before", args)
        cols = [c[0] for c in cur.description]
        return [dict(zip(cols, r, strict=True)) for r in cur]


def write_crl(lay: Layout, ca: pki.CA, index: CertIndex, now: dt.datetime) -> x509.CertificateRevocationList:
    # The CRL number only has to grow; the clock in milliseconds does, without extra state.
    crl = ca.crl(index.revoked(), now, number=int(now.timestamp() * 1000))
    write_atomic(lay.crl, crl.public_bytes(serialization.Encoding.PEM))
    return crl


def issue_identity(ca: pki.CA, index: CertIndex, kiosk_id: str, site: str, now: dt.datetime):
    """Offline issuance (technician laptop, bulk pre-provisioning): new key + certificate."""
    check_kiosk_id(kiosk_id)
    key = pki.new_ec_key()
    csr = pki.build_csr(key, kiosk_id)
    pki.parse_csr(csr.public_bytes(serialization.Encoding.PEM), kiosk_id)
    cert = ca.issue_client(kiosk_id, csr.public_key(), now)
    index.record(cert, site)
    return key, cert
