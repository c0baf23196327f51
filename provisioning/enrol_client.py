"""The kiosk's side of enrolment and renewal: key on the device, CSR, exchange, config.

The private key is generated here and never leaves the kiosk. Certificates are written under
versioned names (``tls/kiosk-<serial>.crt.pem``) and the config is switched to them with one
atomic rename, so a renewal never leaves the agent with a key that does not match its
certificate: the running connection carries on, the next connection uses the new identity.
"""

from __future__ import annotations

import base64
import json
import logging
import ssl
import time
import tomllib
import urllib.error
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec

from foundation.errors import EnrolmentRefused, ProvisioningError
from foundation.secure_files import check_resident_key, write_atomic, write_private
from foundation.settings import KioskConfig, check_kiosk_id, load_toml
from provisioning import pki

log = logging.getLogger(__name__)

MAX_CLOCK_SKEW = 300.0
HINTS = {
    "token_unknown": "check the token was copied completely, from this fleet's controller",
    "token_used": "each token works once: issue a new one with `kioskctl token issue`",
    "token_expired": "tokens last one hour: issue a new one; if it was fresh, check the controller's clock",
    "token_site": "use a token issued for this kiosk's site, or check --site",
    "token_kiosk": "this token names another kiosk id; check --kiosk-id",
    "kiosk_site_conflict": "this id is enrolled at another site; pick a new id or revoke the old one first",
    "kiosk_active": "this id is in service; ask for a token issued for this kiosk id to replace it",
}


@dataclass
class EnrolResult:
    config_path: Path
    kiosk_id: str
    site: str
    serial: str
    not_after: float
    warnings: list[str] = field(default_factory=list)


def _post(url: str, body: dict, *, ca_file: str | None, timeout: float) -> dict:
    data = json.dumps(body).encode()
    req = urllib.request.Request(url, data=data, headers={"Content-Type": "application/json"}, method="POST")
    ctx = ssl.create_default_context(cafile=ca_file) if url.startswith("https") else None
    try:
        with urllib.request.urlopen(req, timeout=timeout, context=ctx) as resp:
            return json.loads(resp.read())
    except urllib.error.HTTPError as exc:
        try:
            err = json.loads(exc.read())
            reason, message = err["error"], err["message"]
        except (ValueError, KeyError, TypeError):
            raise ProvisioningError(f"the controller at {url} answered HTTP {exc.code}; is the URL right?") from None
        hint = HINTS.get(reason)
        raise EnrolmentRefused(reason, message + (f" ({hint})" if hint else "")) from None
    except ssl.SSLError as exc:
        raise ProvisioningError(f"TLS to {url} failed ({exc.reason}): check --ca-file and the kiosk's clock") from None
    except (urllib.error.URLError, OSError) as exc:
        reason = getattr(exc, "reason", exc)
        raise ProvisioningError(f"cannot reach the controller at {url} ({reason}): check the network cable, "
                                "the URL and that the controller is running") from None
    except ValueError:
        raise ProvisioningError(f"the controller at {url} did not answer JSON; is the URL right?") from None


def _check_reply(reply: dict, key: ec.EllipticCurvePrivateKey, kiosk_id: str, ca_hash: str | None):
    try:
        cert = x509.load_pem_x509_certificate(reply["certificate"].encode())
        ca_cert = x509.load_pem_x509_certificate(reply["ca_certificate"].encode())
    except (KeyError, ValueError, AttributeError):
        raise ProvisioningError("the controller's answer holds no valid certificate") from None
    if ca_hash and pki.fingerprint(ca_cert) != ca_hash.lower():
        raise ProvisioningError(f"the controller's CA is {pki.fingerprint(ca_cert)}, not the pinned {ca_hash}: "
                                "wrong controller, or someone in between; do not continue")
    if ca_hash and not pki.check_endorsement(ca_cert, reply):
        # Broker address, command key and reference key must come from the pinned CA's controller.
        raise ProvisioningError("the controller's answer is not signed by the pinned CA: someone in between "
                                "changed it, or the controller is too old; do not continue")
    try:
        cert.verify_directly_issued_by(ca_cert)
    except (ValueError, TypeError, InvalidSignature):
        raise ProvisioningError("the certificate received was not signed by the controller's CA") from None
    mine = key.public_key().public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)
    got = cert.public_key().public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)
    if mine != got or pki.common_name(cert.subject) != kiosk_id:
        raise ProvisioningError("the certificate received does not match this kiosk's key or id")
    return cert, ca_cert


def _toml_value(v) -> str:
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, int | float):
        return repr(v)
    return json.dumps(str(v), ensure_ascii=False)


def dump_toml(data: dict) -> str:
    """Enough TOML for a kiosk config: scalars, then one level of tables."""
    lines = [f"{k} = {_toml_value(v)}" for k, v in data.items() if not isinstance(v, dict)]
    for k, v in data.items():
        if isinstance(v, dict):
            lines += ["", f"[{k}]", *(f"{kk} = {_toml_value(vv)}" for kk, vv in v.items())]
    return "\n".join(lines) + "\n"


def _write_identity(config_path: Path, key, cert, ca_cert, updates: dict, reply: dict) -> None:
    tls = config_path.parent / "tls"
    serial = format(cert.serial_number, "x")
    key_file, cert_file, ca_file = tls / f"kiosk-{serial}.key.pem", tls / f"kiosk-{serial}.crt.pem", tls / "ca.crt.pem"
    resident_key = reply.get("resident_ref_key")
    if resident_key is not None:  # checked before anything is written
        check_resident_key(str(resident_key), "the controller's resident_ref_key")
    write_private(key_file, pki.key_pem(key))
    write_atomic(cert_file, pki.cert_pem(cert))
    write_atomic(ca_file, pki.cert_pem(ca_cert))
    if resident_key is not None:
        updates = {**updates, "resident_ref_key_file": str(write_private(tls / "resident-ref.key", f"{resident_key}\n"))}
    data: dict = {}
    if config_path.exists():
        try:
            data = tomllib.loads(config_path.read_text())
        except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
            raise ProvisioningError(f"{config_path} is not valid TOML ({exc}); fix or move it away") from None
    data.update(updates)
    data.update({"ca_file": str(ca_file), "cert_file": str(cert_file), "key_file": str(key_file)})
    data.setdefault("data_dir", str(config_path.parent / "data"))
    write_atomic(config_path, dump_toml(data))


def _skew_warning(reply: dict, now: float) -> list[str]:
    skew = now - float(reply.get("server_time", now))
    if abs(skew) > MAX_CLOCK_SKEW:
        return [f"this kiosk's clock is {skew:+.0f} s off the controller's: set the time (NTP) or TLS will fail"]
    return []


def enroll(url: str, *, token: str, kiosk_id: str, site: str, config_path: Path, ca_hash: str | None = None,
           ca_file: str | None = None, clock: Callable[[], float] = time.time, timeout: float = 15.0,
           progress: Callable[[str], None] = lambda _m: None) -> EnrolResult:
    check_kiosk_id(kiosk_id)
    base = url.rstrip("/")
    if not base.startswith("https://") and not ca_hash:
        # Whoever answers plain HTTP would hand this kiosk its broker, command key and reference key.
        raise ProvisioningError(f"{base} is not https://: enrolment over plain HTTP needs the fleet CA pinned "
                                "with --ca-hash (printed by kioskctl token issue)")
    progress("generating this kiosk's key (EC P-256, stays on the device)")
    key = pki.new_ec_key()
    csr = pki.build_csr(key, kiosk_id).public_bytes(serialization.Encoding.PEM).decode()
    progress(f"exchanging the token at {base}")
    reply = _post(base + "/api/v1/enroll", {"token": token, "kiosk_id": kiosk_id, "site": site, "csr": csr,
                                            "client_time": clock()}, ca_file=ca_file, timeout=timeout)
    cert, ca_cert = _check_reply(reply, key, kiosk_id, ca_hash)
    progress(f"writing the identity and {config_path}")
    _write_identity(Path(config_path), key, cert, ca_cert, {
        "kiosk_id": kiosk_id, "site": site, "broker": reply.get("broker", ""),
        "controller_public_key": reply.get("controller_public_key", ""), "enrolment_url": base}, reply)
    log.info("enrolled", extra={"fields": {"kiosk_id": kiosk_id, "site": site, "serial": reply.get("serial")}})
    return EnrolResult(Path(config_path), kiosk_id, site, format(cert.serial_number, "x"),
                       cert.not_valid_after_utc.timestamp(), _skew_warning(reply, clock()))


def renew(config_path: Path, *, url: str = "", clock: Callable[[], float] = time.time, timeout: float = 15.0,
          progress: Callable[[str], None] = lambda _m: None) -> EnrolResult:
    """Replace the kiosk's certificate with a new one (new key) before the current one expires."""
    config_path = Path(config_path)
    cfg = load_toml(KioskConfig, config_path)
    base = (url or cfg.enrolment_url).rstrip("/")
    if not base:
        raise ProvisioningError(f"{config_path} has no enrolment_url; give --url")
    try:
        current_key = serialization.load_pem_private_key(Path(cfg.key_file).read_bytes(), password=None)
        current_pem = Path(cfg.cert_file).read_text()
    except (OSError, ValueError) as exc:
        raise ProvisioningError(f"cannot read the current identity ({exc}); enrol again with a token") from None
    if not isinstance(current_key, ec.EllipticCurvePrivateKey):
        raise ProvisioningError(f"{cfg.key_file} is not an EC key; enrol again with a token")
    progress("generating the new key")
    key = pki.new_ec_key()
    csr = pki.build_csr(key, cfg.kiosk_id).public_bytes(serialization.Encoding.PEM).decode()
    ts = clock()
    sig = current_key.sign(renew_message(csr, ts), ec.ECDSA(hashes.SHA256()))
    progress(f"asking {base} for a new certificate")
    reply = _post(base + "/api/v1/renew", {"certificate": current_pem, "csr": csr, "ts": ts,
                                           "signature": base64.b64encode(sig).decode()},
                  ca_file=cfg.ca_file if base.startswith("https") else None, timeout=timeout)
    ca_hash = pki.fingerprint(x509.load_pem_x509_certificate(Path(cfg.ca_file).read_bytes()))
    cert, ca_cert = _check_reply(reply, key, cfg.kiosk_id, ca_hash)
    _write_identity(config_path, key, cert, ca_cert, {}, reply)
    log.info("renewed", extra={"fields": {"kiosk_id": cfg.kiosk_id, "serial": reply.get("serial")}})
    return EnrolResult(config_path, cfg.kiosk_id, cfg.site, format(cert.serial_number, "x"),
                       cert.not_valid_after_utc.timestamp(), _skew_warning(reply, clock()))


def renew_message(csr_pem: str, timestamp: float) -> bytes:
    # Same bytes as controller.enrolment_service.renew_message (kept here so a kiosk needs no controller code).
    return json.dumps({"csr": csr_pem, "ts": timestamp}, sort_keys=True, separators=(",", ":")).encode()
