"""How the demo fleet is built: with the technician's own tools, as a real deployment is.

``scripts/demo_fleet.py`` calls these steps; each runs the real program a person would run:

1. ``kiosk-provision init-fleet`` makes the fleet (CA, broker TLS + ACL config, the controller's
   client certificate and command-signing key) in the demo's data folder, once. The CA
   passphrase is a random one kept in ``secrets/ca-passphrase`` (0600): a demo has nobody to ask.
2. ``broker_config`` derives the demo's Mosquitto file from the generated ``broker/mosquitto.conf``:
   the same TLS listener, CRL and ACL, only moved to a private port and to the demo's folders.
3. ``enrol`` gives each kiosk a one-time token (``kioskctl token issue``) and runs
   ``kiosk-provision enroll`` against the controller's enrolment endpoint; enrolment writes the
   kiosk's ``kiosk.toml`` with its certificate and the pinned controller key.

Every step is idempotent: a fleet folder that exists is reused, an enrolled kiosk is not enrolled
again, so running the demo twice gives the same fleet.
"""

from __future__ import annotations

import json
import os
import re
import secrets
import subprocess
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
BIN = ROOT / ".venv" / "bin"


class DemoSetupError(Exception):
    """A step of building the demo fleet failed; the message names the step and its log."""


def _run(argv: list[str], log: Path, *, stdin: str = "") -> str:
    log.parent.mkdir(parents=True, exist_ok=True)
    r = subprocess.run(argv, input=stdin, capture_output=True, text=True, cwd=ROOT, timeout=120)
    with log.open("a") as fh:
        fh.write(f"$ {' '.join(argv[:3])} ...\n{r.stdout}{r.stderr}")
    if r.returncode != 0:
        raise DemoSetupError(f"{Path(argv[0]).name} {argv[1]} failed ({r.stderr.strip() or r.stdout.strip()}); "
                             f"see {log}")
    return r.stdout


def passphrase_file(data: Path) -> Path:
    return data / "secrets" / "ca-passphrase"


def init_fleet(data: Path, port: int, log: Path) -> bool:
    """Create the fleet in ``data`` unless it is there; True when it was created now."""
    if (data / "ca" / "ca.key.pem").exists():
        return False
    if (data / "controller" / "controller_ed25519.pem").exists():
        raise DemoSetupError(f"{data} holds a demo from before the demo had a fleet CA: move it away "
                             "(or give another --data-dir) and run the demo again")
    secret = passphrase_file(data)
    secret.parent.mkdir(parents=True, exist_ok=True)
    if not secret.exists():
        fd = os.open(secret, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w") as fh:
            fh.write(secrets.token_urlsafe(24) + "\n")
    _run([str(BIN / "kiosk-provision"), "init-fleet", "--data-dir", str(data), "--passphrase-file", str(secret),
          "--host", "localhost", "--host", "127.0.0.1", "--port", str(port)], log)
    return True


def broker_config(data: Path, port: int, *, plain: bool, as_root: bool) -> str:
    """The demo's mosquitto.conf: the generated one on a private port, or a plain listener."""
    broker_dir = data / "broker"
    local = [f"persistence_location {broker_dir}/", f"log_dest file {broker_dir}/mosquitto.log"]
    # As root, Mosquitto would drop to user "mosquitto", which cannot read demo-data/ (nor the 0600 key).
    local += ["user root"] if as_root else []
    if plain:
        return "\n".join([f"listener {port} 127.0.0.1", "allow_anonymous true", "persistence true",
                          "max_queued_messages 10000", *local, ""])
    generated = (broker_dir / "mosquitto.conf").read_text().splitlines()
    out = []
    for line in generated:
        if line.startswith("listener "):
            line = f"listener {port} 127.0.0.1"
        elif line.startswith(("persistence_location ", "log_dest ")):
            continue  # the Debian paths of a production broker; the demo keeps its own
        out.append(line)
    if not any(re.match(r"require_certificate\s+true", x) for x in out):
        raise DemoSetupError(f"{broker_dir / 'mosquitto.conf'} has no mutual-TLS listener; was it edited?")
    return "\n".join(out + local + [""])


def set_settings(config: Path, **values) -> None:
    """Change settings in a kiosk's config file, keeping everything enrolment wrote."""
    from foundation.secure_files import write_atomic
    from provisioning.enrol_client import dump_toml

    data = tomllib.loads(config.read_text())
    if any(data.get(k) != v for k, v in values.items()):
        write_atomic(config, dump_toml({**data, **values}))


def enrolled(config: Path) -> bool:
    try:
        data = tomllib.loads(config.read_text())
    except (OSError, tomllib.TOMLDecodeError):
        return False
    return bool(data.get("cert_file") and data.get("controller_public_key")) and Path(data["cert_file"]).exists()


def enrol(data: Path, kiosk_id: str, site: str, enrol_url: str, log: Path) -> Path:
    """Enrol one kiosk as a technician would; returns its config file (kept if already enrolled)."""
    home = data / "kiosks" / kiosk_id
    config = home / "kiosk.toml"
    if enrolled(config):
        return config
    out = _run([str(BIN / "kioskctl"), "--data-dir", str(data / "controller"), "--user", "demo",
                "token", "issue", "--site", site, "--kiosk-id", kiosk_id, "--json"], log)
    issued = json.loads(out)
    home.mkdir(parents=True, exist_ok=True)
    # Settings the technician puts in the file first; enrolment keeps them and adds the identity.
    config.write_text(f'data_dir = "{home}"\nsimulated = true\n')
    _run([str(BIN / "kiosk-provision"), "enroll", "--url", enrol_url, "--kiosk-id", kiosk_id, "--site", site,
          "--ca-hash", issued["ca_hash"], "--config", str(config)], log, stdin=issued["token"] + "\n")
    return config
