"""``kiosk-provision``: the technician's tool for fleet identities, enrolment, flashing and self-test."""

from __future__ import annotations

import argparse
import getpass
import sys
import time
from pathlib import Path

from foundation.errors import KioskError
from foundation.logs import setup_logging


def _say(message: str) -> None:
    print(f"... {message}", file=sys.stderr, flush=True)


def _passphrase(args: argparse.Namespace, *, confirm: bool = False) -> bytes:
    from foundation.errors import ProvisioningError
    from foundation.secure_files import read_passphrase_file

    if args.passphrase_file:
        return read_passphrase_file(args.passphrase_file)
    if not sys.stdin.isatty():
        raise ProvisioningError("no terminal to ask for the CA passphrase: give --passphrase-file FILE")
    first = getpass.getpass("CA passphrase: ").encode()
    if len(first) < 8:
        raise ProvisioningError("the CA passphrase must have at least 8 characters")
    if confirm and getpass.getpass("again: ").encode() != first:
        raise ProvisioningError("the two passphrases differ")
    return first


def cmd_init_fleet(args) -> int:
    from provisioning import fleet_ca

    lay = fleet_ca.init_fleet(args.data_dir, _passphrase(args, confirm=True), hosts=args.host or ["localhost", "127.0.0.1"], port=args.port,
                           broker_url=args.broker or "", instances=tuple(args.instance or ()),
                           database=args.database or "", progress=_say)
    from cryptography import x509

    from provisioning.pki import fingerprint

    ca = x509.load_pem_x509_certificate(lay.ca_cert.read_bytes())
    print(f"fleet created in {lay.root}")
    print(f"CA fingerprint (give to technicians as --ca-hash): {fingerprint(ca)}")
    print(f"broker config: {lay.mosquitto_conf} (ACL {lay.acl}, CRL {lay.crl})")
    print(f"controller config: {lay.controller_toml}")
    for name in args.instance or ():
        print(f"controller instance {name}: {lay.instance_dir(name) / 'controller.toml'}")
    return 0


def cmd_add_controller(args) -> int:
    from provisioning import fleet_ca, pki, revocation

    lay = fleet_ca.Layout(args.data_dir)
    toml = fleet_ca.add_controller_instance(lay, fleet_ca.load_ca(lay, _passphrase(args)), args.instance,
                                            broker_url=args.broker, database=args.database, now=pki.utcnow())
    print(f"controller instance {args.instance}: {toml} (ACL {lay.acl} now names it)")
    if args.broker_pid or args.broker_pid_file or args.reload_command:
        print(revocation.reload_broker(pid=args.broker_pid, pid_file=args.broker_pid_file,
                                       command=args.reload_command))
    else:
        print("reload the broker (SIGHUP) so it reads the new ACL")
    return 0


def cmd_issue(args) -> int:
    from foundation.secure_files import write_atomic, write_private
    from provisioning import fleet_ca, pki

    lay = fleet_ca.Layout(args.data_dir)
    ca = fleet_ca.load_ca(lay, _passphrase(args))
    index = fleet_ca.CertIndex(lay.index)
    try:
        key, cert = fleet_ca.issue_identity(ca, index, args.kiosk_id, args.site, pki.utcnow())
    finally:
        index.close()
    write_private(args.out / f"{args.kiosk_id}.key.pem", pki.key_pem(key), overwrite=False)
    write_atomic(args.out / f"{args.kiosk_id}.crt.pem", pki.cert_pem(cert))
    write_atomic(args.out / "ca.crt.pem", pki.cert_pem(ca.cert))
    print(f"issued {args.kiosk_id} serial {cert.serial_number:x} into {args.out}")
    return 0


def cmd_enroll(args) -> int:
    from provisioning.enrol_client import enroll

    token = args.token
    if token is None:
        if not sys.stdin.isatty():
            token = sys.stdin.readline().strip()
        else:
            token = getpass.getpass("enrolment token: ").strip()
    res = enroll(args.url, token=token, kiosk_id=args.kiosk_id, site=args.site, config_path=args.config,
                 ca_hash=args.ca_hash, ca_file=args.ca_file, progress=_say)
    for w in res.warnings:
        print(f"warning: {w}", file=sys.stderr)
    until = time.strftime("%Y-%m-%d", time.gmtime(res.not_after))
    print(f"enrolled {res.kiosk_id} at site {res.site}: certificate {res.serial} valid until {until}; "
          f"config {res.config_path}")
    return 0


def cmd_renew(args) -> int:
    from provisioning.enrol_client import renew

    res = renew(args.config, url=args.url or "", progress=_say)
    until = time.strftime("%Y-%m-%d", time.gmtime(res.not_after))
    print(f"renewed {res.kiosk_id}: certificate {res.serial} valid until {until} "
          "(the agent uses it from its next connection)")
    return 0


def cmd_revoke(args) -> int:
    from provisioning import fleet_ca, revocation

    lay = fleet_ca.Layout(args.data_dir)
    serials = revocation.revoke(lay, _passphrase(args), args.kiosk_id, serial=args.serial, reason=args.reason)
    print(f"revoked {args.kiosk_id}: {', '.join(serials)}; CRL written to {lay.crl}")
    print(revocation.reload_broker(pid=args.broker_pid, pid_file=args.broker_pid_file, command=args.reload_command))
    return 0


def cmd_crl(args) -> int:
    from provisioning import fleet_ca, pki, revocation

    lay = fleet_ca.Layout(args.data_dir)
    ca = fleet_ca.load_ca(lay, _passphrase(args))
    index = fleet_ca.CertIndex(lay.index)
    try:
        crl = fleet_ca.write_crl(lay, ca, index, pki.utcnow())
    finally:
        index.close()
    print(f"CRL {lay.crl} renewed, valid until {crl.next_update_utc:%Y-%m-%d}")
    print(revocation.reload_broker(pid=args.broker_pid, pid_file=args.broker_pid_file, command=args.reload_command))
    return 0


def _fleet_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--data-dir", type=Path, required=True, help="the fleet folder init-fleet created")
    p.add_argument("--passphrase-file", type=Path, help="read the CA passphrase from this file (else prompt)")


def _reload_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--broker-pid", type=int, help="send SIGHUP to this mosquitto process")
    p.add_argument("--broker-pid-file", type=Path, help="send SIGHUP to the pid in this file")
    p.add_argument("--reload-command", default="", help="run this instead, e.g. 'systemctl reload mosquitto'")


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="kiosk-provision", description="Provision community kiosks: fleet CA, "
                                "enrolment, certificates, firmware flashing and self-test.")
    p.add_argument("--log-level", default=None, help="DEBUG, INFO, WARNING (default) or ERROR")
    sub = p.add_subparsers(dest="command", required=True, metavar="COMMAND")

    s = sub.add_parser("init-fleet", help="create the fleet CA, broker/controller identities and broker config")
    _fleet_args(s)
    s.add_argument("--host", action="append", default=None,
                   help="broker host name or address for its certificate (repeat; default localhost, 127.0.0.1)")
    s.add_argument("--port", type=int, default=8883, help="TLS listener port (8883)")
    s.add_argument("--broker", help="broker URL kiosks are given (default mqtts://FIRST-HOST:PORT)")
    s.add_argument("--instance", action="append", default=None,
                   help="a controller instance of several (repeat): its own certificate controller-NAME "
                        "and controller/NAME/controller.toml (needs --database)")
    s.add_argument("--database", help="the PostgreSQL URL the controller instances share")
    s.set_defaults(func=cmd_init_fleet)

    s = sub.add_parser("add-controller", help="issue one more controller instance (certificate, config, ACL)")
    _fleet_args(s)
    s.add_argument("--instance", required=True, help="its name: the certificate is controller-NAME")
    s.add_argument("--database", required=True, help="the PostgreSQL URL the instances share")
    s.add_argument("--broker", required=True, help="the broker URL the instance connects to (mqtts://...)")
    _reload_args(s)
    s.set_defaults(func=cmd_add_controller)

    s = sub.add_parser("issue", help="issue a kiosk identity offline (key + certificate) into a folder")
    _fleet_args(s)
    s.add_argument("--kiosk-id", required=True)
    s.add_argument("--site", required=True)
    s.add_argument("--out", type=Path, required=True, help="folder for KIOSK.key.pem, KIOSK.crt.pem, ca.crt.pem")
    s.set_defaults(func=cmd_issue)

    s = sub.add_parser("enroll", help="on the kiosk: make a key, exchange a token for a certificate, write config")
    s.add_argument("--url", required=True, help="the controller's enrolment address, e.g. https://ctl:8080")
    s.add_argument("--token", default=None, help="the one-time token (else read from stdin or a prompt)")
    s.add_argument("--kiosk-id", required=True)
    s.add_argument("--site", required=True)
    s.add_argument("--config", type=Path, default=Path("/etc/kiosk/kiosk.toml"), help="kiosk config to write")
    s.add_argument("--ca-hash", help="pin the fleet CA: sha256:... as printed by kioskctl token issue")
    s.add_argument("--ca-file", help="CA bundle to verify an https:// enrolment address")
    s.set_defaults(func=cmd_enroll)

    s = sub.add_parser("renew", help="on the kiosk: get a new certificate before the current one expires")
    s.add_argument("--config", type=Path, default=Path("/etc/kiosk/kiosk.toml"))
    s.add_argument("--url", help="enrolment address (default: the one enroll wrote into the config)")
    s.set_defaults(func=cmd_renew)

    s = sub.add_parser("revoke", help="revoke a kiosk's certificate and make the broker reload the CRL")
    _fleet_args(s)
    s.add_argument("--kiosk-id", required=True)
    s.add_argument("--serial", help="revoke only this certificate (hex serial)")
    s.add_argument("--reason", default="", help="recorded in the index")
    _reload_args(s)
    s.set_defaults(func=cmd_revoke)

    s = sub.add_parser("crl", help="re-sign the CRL before it expires (monthly timer) and reload the broker")
    _fleet_args(s)
    _reload_args(s)
    s.set_defaults(func=cmd_crl)

    from provisioning import cli_device

    cli_device.register(sub)
    return p


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    setup_logging(args.log_level or "WARNING")
    try:
        return args.func(args)
    except KioskError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
