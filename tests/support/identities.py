"""Kiosk TLS identities for tests: certificates from a test fleet's CA, written to files a client reads.

The fleet folder itself comes from ``provisioning.fleet_ca.init_fleet`` (the ``fleet_dir``
fixture of tests/provisioning), protected by :data:`PASSPHRASE`.
"""

from __future__ import annotations

from pathlib import Path

from foundation.secure_files import write_atomic, write_private
from provisioning import fleet_ca, pki

PASSPHRASE = b"fleet-passphrase-for-tests"


def write_identity(dir: Path, name: str, key, cert) -> tuple[Path, Path]:
    """``(cert file, key file)`` of a key and certificate, the key readable by its owner only."""
    k = write_private(dir / f"{name}.key.pem", pki.key_pem(key))
    c = write_atomic(dir / f"{name}.crt.pem", pki.cert_pem(cert))
    return c, k


class Issuer:
    """Issues kiosk certificates from a test fleet's CA (recorded in its index, so revocation
    knows them) into ``out_dir``; a context manager that closes the index."""

    def __init__(self, fleet_dir: fleet_ca.Layout, out_dir: Path) -> None:
        self.ca = fleet_ca.load_ca(fleet_dir, PASSPHRASE)
        self.index = fleet_ca.CertIndex(fleet_dir.index)
        self.out_dir = out_dir

    def issue(self, kiosk_id: str, site: str = "site-1") -> tuple[Path, Path]:
        """``(cert file, key file)`` of a freshly issued identity of ``kiosk_id`` at ``site``."""
        key, cert = fleet_ca.issue_identity(self.ca, self.index, kiosk_id, site, pki.utcnow())
        return write_identity(self.out_dir, kiosk_id, key, cert)

    def close(self) -> None:
        self.index.close()

    def __enter__(self) -> Issuer:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
