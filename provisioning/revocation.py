"""Revoking a kiosk: its certificates go on the CRL and the broker re-reads it.

Verified on Mosquitto 2.0.11: SIGHUP reloads the CRL (and the ACL) without dropping
connections, and from then on a revoked certificate is refused at the TLS handshake. A session
that was already connected stays connected until it disconnects; ``--restart-command`` exists for
when it must be cut at once (every kiosk then reconnects, with backoff).
"""

from __future__ import annotations

import logging
import os
import shlex
import signal
import subprocess
from collections.abc import Callable
from pathlib import Path

from foundation.errors import ProvisioningError
from provisioning import fleet_ca, pki

log = logging.getLogger(__name__)


def revoke(lay: fleet_ca.Layout, passphrase: bytes, kiosk_id: str, *, serial: str | None = None,
           reason: str = "", now=None) -> list[str]:
    """Revoke the kiosk's certificates (or one ``serial``) and rewrite the CRL; returns the serials."""
    now = now or pki.utcnow()
    ca = fleet_ca.load_ca(lay, passphrase)
    index = fleet_ca.CertIndex(lay.index)
    try:
        serials = index.revoke(kiosk_id, now, serial=serial, reason=reason)
        if not serials:
            known = index.certs(kiosk_id)
            if not known:
                raise ProvisioningError(f"no certificate was ever issued to {kiosk_id!r} (check the id)")
            raise ProvisioningError(f"{kiosk_id!r} has no unrevoked certificate"
                                    + (f" with serial {serial}" if serial else ""))
        fleet_ca.write_crl(lay, ca, index, now)
    finally:
        index.close()
    log.info("revoked", extra={"fields": {"kiosk_id": kiosk_id, "serials": ",".join(serials)}})
    return serials


def reload_broker(*, pid: int | None = None, pid_file: Path | None = None, command: str = "",
                  run: Callable = subprocess.run) -> str:
    """Make the broker re-read the CRL: SIGHUP to a pid, or a command (``systemctl reload mosquitto``)."""
    if pid_file is not None:
        try:
            pid = int(Path(pid_file).read_text().strip())
        except (OSError, ValueError):
            raise ProvisioningError(f"cannot read the broker's pid from {pid_file}; is mosquitto running?") from None
    if pid is not None:
        try:
            os.kill(pid, signal.SIGHUP)
        except ProcessLookupError:
            raise ProvisioningError(f"no broker process {pid}: is mosquitto running?") from None
        return f"sent SIGHUP to broker pid {pid}"
    if command:
        proc = run(shlex.split(command), capture_output=True, text=True, timeout=60)
        if proc.returncode != 0:
            raise ProvisioningError(f"`{command}` failed ({proc.returncode}): {proc.stderr.strip()[:300]}")
        return f"ran `{command}`"
    return "broker not reloaded: run `systemctl reload mosquitto` so it reads the new CRL"
