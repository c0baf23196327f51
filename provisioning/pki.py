"""The fleet's certificate authority: EC P-256 keys, CSRs, certificates and the CRL.

Pure functions over ``cryptography`` objects, with the clock passed in. Kiosks are identified
by the certificate's common name (the broker uses it as the MQTT user name); names starting
with ``_`` are reserved for the fleet's own services (``_controller``).
"""

from __future__ import annotations

import base64
import datetime as dt
import ipaddress
import json
from collections.abc import Iterable
from dataclasses import dataclass

from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from foundation.errors import EnrolmentRefused, ProvisioningError

CA_DAYS = 3650
SERVER_DAYS = 825
CLIENT_DAYS = 365
CRL_DAYS = 180
# Certificates start a little in the past so a kiosk whose clock lags a few minutes accepts them.
BACKDATE = dt.timedelta(minutes=5)


def new_ec_key() -> ec.EllipticCurvePrivateKey:
    return ec.generate_private_key(ec.SECP256R1())


def new_signing_key() -> ed25519.Ed25519PrivateKey:
    return ed25519.Ed25519PrivateKey.generate()


def key_pem(key, passphrase: bytes | None = None) -> bytes:
    enc = serialization.BestAvailableEncryption(passphrase) if passphrase else serialization.NoEncryption()
    return key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, enc)


def load_key_pem(data: bytes, passphrase: bytes | None = None, *, what: str = "key"):
    try:
        return serialization.load_pem_private_key(data, password=passphrase)
    except TypeError:
        raise ProvisioningError(f"{what} is encrypted: a passphrase is needed") from None
    except ValueError:
        # cryptography says "Bad decrypt" for a wrong passphrase; never echo the passphrase.
        raise ProvisioningError(f"cannot open {what}: wrong passphrase or not a PEM private key") from None


def cert_pem(cert: x509.Certificate) -> bytes:
    return cert.public_bytes(serialization.Encoding.PEM)


def fingerprint(cert: x509.Certificate) -> str:
    """``sha256:<hex>`` of the DER certificate: what a technician compares or pins."""
    return "sha256:" + cert.fingerprint(hashes.SHA256()).hex()


def common_name(name: x509.Name) -> str:
    attrs = name.get_attributes_for_oid(NameOID.COMMON_NAME)
    return str(attrs[0].value) if attrs else ""


def _name(cn: str, org: str = "Community Kiosk Fleet") -> x509.Name:
    return x509.Name([x509.NameAttribute(NameOID.ORGANIZATION_NAME, org),
                      x509.NameAttribute(NameOID.COMMON_NAME, cn)])


def _ski(pub) -> x509.SubjectKeyIdentifier:
    return x509.SubjectKeyIdentifier.from_public_key(pub)


def create_ca(now: dt.datetime, *, name: str = "Community Kiosk Fleet CA") -> tuple[ec.EllipticCurvePrivateKey, x509.Certificate]:
    key = new_ec_key()
    subject = _name(name)
    cert = (
        x509.CertificateBuilder()
        .subject_name(subject).issuer_name(subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - BACKDATE).not_valid_after(now + dt.timedelta(days=CA_DAYS))
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(x509.KeyUsage(digital_signature=False, content_commitment=False, key_encipherment=False,
                                     data_encipherment=False, key_agreement=False, key_cert_sign=True,
                                     crl_sign=True, encipher_only=False, decipher_only=False), critical=True)
        .add_extension(_ski(key.public_key()), critical=False)
        .sign(key, hashes.SHA256())
    )
    return key, cert


@dataclass(frozen=True)
class CA:
    """A loaded CA: its (decrypted) key and certificate."""

    key: ec.EllipticCurvePrivateKey
    cert: x509.Certificate

    def _leaf(self, subject: x509.Name, public_key, now: dt.datetime, days: int, serial: int | None = None):
        return (
            x509.CertificateBuilder()
            .subject_name(subject).issuer_name(self.cert.subject)
            .public_key(public_key)
            .serial_number(serial or x509.random_serial_number())
            .not_valid_before(now - BACKDATE).not_valid_after(now + dt.timedelta(days=days))
            .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
            .add_extension(x509.KeyUsage(digital_signature=True, content_commitment=False, key_encipherment=False,
                                         data_encipherment=False, key_agreement=True, key_cert_sign=False,
                                         crl_sign=False, encipher_only=False, decipher_only=False), critical=True)
            .add_extension(_ski(public_key), critical=False)
            .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(self.key.public_key()), critical=False)
        )

    def issue_server(self, public_key, hosts: Iterable[str], now: dt.datetime) -> x509.Certificate:
        hosts = list(hosts)
        sans: list[x509.GeneralName] = []
        for h in hosts:
            try:
                sans.append(x509.IPAddress(ipaddress.ip_address(h)))
            except ValueError:
                sans.append(x509.DNSName(h))
        return (
            self._leaf(_name(hosts[0]), public_key, now, SERVER_DAYS)
            .add_extension(x509.SubjectAlternativeName(sans), critical=False)
            .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
            .sign(self.key, hashes.SHA256())
        )

    def issue_client(self, cn: str, public_key, now: dt.datetime, *, days: int = CLIENT_DAYS,
                     serial: int | None = None) -> x509.Certificate:
        return (
            self._leaf(_name(cn), public_key, now, days, serial)
            .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.CLIENT_AUTH]), critical=False)
            .sign(self.key, hashes.SHA256())
        )

    def crl(self, revoked: Iterable[tuple[int, dt.datetime]], now: dt.datetime, *, days: int = CRL_DAYS,
            number: int = 1) -> x509.CertificateRevocationList:
        b = (x509.CertificateRevocationListBuilder()
             .issuer_name(self.cert.subject)
             .last_update(now - BACKDATE).next_update(now + dt.timedelta(days=days))
             .add_extension(x509.CRLNumber(number), critical=False))
        for serial, when in revoked:
            b = b.add_revoked_certificate(
                x509.RevokedCertificateBuilder().serial_number(serial).revocation_date(when).build())
        return b.sign(self.key, hashes.SHA256())

    def verify_issued(self, cert: x509.Certificate, now: dt.datetime) -> None:
        """Raise EnrolmentRefused unless ``cert`` was signed by this CA and is valid at ``now``."""
        try:
            cert.verify_directly_issued_by(self.cert)
        except (ValueError, TypeError, InvalidSignature):
            raise EnrolmentRefused("cert_untrusted", "certificate was not issued by this fleet's CA") from None
        if not (cert.not_valid_before_utc <= now <= cert.not_valid_after_utc):
            raise EnrolmentRefused("cert_expired", "certificate is expired or not yet valid; re-enrol with a token")


def build_csr(key: ec.EllipticCurvePrivateKey, kiosk_id: str) -> x509.CertificateSigningRequest:
    return x509.CertificateSigningRequestBuilder().subject_name(_name(kiosk_id)).sign(key, hashes.SHA256())


def parse_csr(pem: str | bytes, expected_cn: str) -> x509.CertificateSigningRequest:
    """Load and check a kiosk CSR: well formed, self-signature valid, EC P-256 key, CN = kiosk id."""
    if isinstance(pem, str):
        pem = pem.encode("ascii", "replace")
    try:
        csr = x509.load_pem_x509_csr(pem)
    except ValueError:
        raise EnrolmentRefused("csr_invalid", "the CSR is not a PEM certificate signing request") from None
    try:
        valid = csr.is_signature_valid
        key = csr.public_key()
    except (ValueError, TypeError):
        raise EnrolmentRefused("csr_invalid", "the CSR cannot be decoded") from None
    if not valid:
        raise EnrolmentRefused("csr_signature", "the CSR's signature does not match its public key")
    if not isinstance(key, ec.EllipticCurvePublicKey) or key.curve.name != "secp256r1":
        raise EnrolmentRefused("csr_key_type", "the CSR's key must be EC P-256")
    cn = common_name(csr.subject)
    if cn != expected_cn:
        raise EnrolmentRefused("csr_subject", f"the CSR names {cn!r}, but the kiosk id is {expected_cn!r}")
    return csr


# The fields of an enrolment answer a kiosk trusts; the fleet CA signs them (``endorse``), so a
# kiosk that pinned the CA's hash accepts them only from the real controller, even over plain HTTP.
ENDORSED_FIELDS = ("kiosk_id", "site", "serial", "ca_fingerprint", "broker", "controller_public_key",
                   "resident_ref_key")


def endorsement_message(reply: dict) -> bytes:
    return json.dumps({k: reply.get(k, "") for k in ENDORSED_FIELDS}, sort_keys=True,
                      separators=(",", ":")).encode()


def endorse(ca: CA, reply: dict) -> str:
    """Base64 ECDSA-SHA256 signature by the fleet CA over the reply's trusted fields."""
    return base64.b64encode(ca.key.sign(endorsement_message(reply), ec.ECDSA(hashes.SHA256()))).decode()


def check_endorsement(ca_cert: x509.Certificate, reply: dict) -> bool:
    pub = ca_cert.public_key()
    try:
        if not isinstance(pub, ec.EllipticCurvePublicKey):
            return False
        pub.verify(base64.b64decode(str(reply.get("endorsement", ""))), endorsement_message(reply),
                   ec.ECDSA(hashes.SHA256()))
    except (InvalidSignature, ValueError):
        return False
    return True


def utcnow() -> dt.datetime:
    return dt.datetime.now(dt.UTC)
