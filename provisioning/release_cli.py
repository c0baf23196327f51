"""``kiosk-release``: make release keys and key lists, build, sign and verify release bundles.

    kiosk-release keygen --out release-2026a.pem        (also writes release-2026a.pem.pub)
    kiosk-release keylist --root root.pem --key rk-2026a=release-2026a.pem.pub:kiosk,supervisor \\
                          --serial 2 --out release-keys.json
    kiosk-release build kiosk --version 1.4.0 --checkout . --out dist/kiosk-1.4.0
    kiosk-release build supervisor --out dist/fw-1.3.0
    kiosk-release sign dist/kiosk-1.4.0 --key release-2026a.pem --key-id rk-2026a
    kiosk-release verify dist/kiosk-1.4.0 --keys release-keys.json --root-pub root.pem.pub
    kiosk-release publish dist/kiosk-1.4.0 --controller https://controller:8443 --token-file admin.token

Every failure ends with one line naming what was wrong and exit status 1 (2 for usage).
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

from contract import release as R
from foundation.errors import KioskError, ProvisioningError
from foundation.secure_files import write_atomic
from provisioning import release_build as B


def _read_pub(path: str) -> str:
    try:
        return Path(path).read_text(encoding="ascii").strip()
    except (OSError, UnicodeDecodeError) as exc:
        raise ProvisioningError(f"cannot read public key file {path}: {exc}") from None


def _key_list(args) -> R.KeyList:
    try:
        data = Path(args.keys).read_bytes()
    except OSError as exc:
        raise ProvisioningError(f"cannot read key list {args.keys}: {exc}") from None
    return R.verify_key_list(data, R.parse_key(_read_pub(args.root_pub), what=args.root_pub), now=time.time())


def cmd_keygen(args) -> int:
    key = B.new_key(Path(args.out))
    write_atomic(Path(args.out + ".pub"), R.key_text(key) + "\n")
    print(f"wrote {args.out} (private, 0600) and {args.out}.pub: {R.key_text(key)}")
    return 0


def cmd_keylist(args) -> int:
    entries = []
    for spec in args.key:
        kid, sep, rest = spec.partition("=")
        pub_file, sep2, comps = rest.rpartition(":")
        if not sep or not sep2 or not kid:
            raise ProvisioningError(f"--key {spec!r}: write ID=PUBFILE:COMPONENT[,COMPONENT]")
        entries.append((kid, _read_pub(pub_file), comps.split(",")))
    doc = B.build_key_list(B.load_key(Path(args.root)), entries, serial=args.serial, now=int(time.time()),
                           valid_days=args.valid_days)
    B.write_json(Path(args.out), doc)
    print(f"wrote {args.out}: key list serial {args.serial} with {', '.join(e[0] for e in entries)}")
    return 0


def cmd_build(args) -> int:
    out = Path(args.out)
    if (out / R.MANIFEST_FILE).exists():
        raise ProvisioningError(f"{out} already holds a bundle; choose a new folder")
    now = int(time.time())
    if args.component == "kiosk":
        if not args.version:
            raise ProvisioningError("build kiosk needs --version (e.g. 1.4.0)")
        man = B.build_kiosk(out, version=args.version, checkout=Path(args.checkout) if args.checkout else None,
                            wheels=Path(args.wheels) if args.wheels else None, pip_args=tuple(args.pip_arg),
                            min_from_version=args.min_from, now=now, valid_days=args.valid_days)
    else:
        man = B.build_supervisor(out, firmware_dir=Path(args.firmware_dir) if args.firmware_dir else None,
                                 min_from_version=args.min_from, now=now, valid_days=args.valid_days)
    print(f"built {man.component} {man.version}: {len(man.files)} files, {man.total_size} bytes in {out} (unsigned)")
    return 0


def cmd_sign(args) -> int:
    man = B.sign_bundle(Path(args.bundle), B.load_key(Path(args.key)), args.key_id)
    print(f"signed {man.component} {man.version} with {args.key_id}")
    return 0


def cmd_verify(args) -> int:
    man = B.verify_bundle(Path(args.bundle), _key_list(args), now=time.time(), component=args.component,
                          installed=args.installed)
    print(json.dumps({"component": man.component, "version": man.version, "files": len(man.files),
                      "bytes": man.total_size, "key_id": man.key_id, "expires": man.expires}))
    return 0


def cmd_publish(args) -> int:
    from provisioning.release_publish import Client, publish

    try:
        token = Path(args.token_file).read_text(encoding="ascii").strip()
    except (OSError, UnicodeDecodeError) as exc:
        raise ProvisioningError(f"cannot read the API token file {args.token_file}: {exc}") from None
    ctx = None
    if args.ca:
        import ssl

        ctx = ssl.create_default_context(cafile=args.ca)
    rec = publish(Path(args.bundle), Client(args.controller, token, context=ctx), chunk=args.chunk)
    print(json.dumps(rec))
    return 0


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="kiosk-release", description=(__doc__ or "").split("\n")[0])  # no docstring under python -OO
    sub = p.add_subparsers(dest="command", required=True)
    s = sub.add_parser("keygen", help="a new Ed25519 key (root or release)")
    s.add_argument("--out", required=True)
    s.set_defaults(func=cmd_keygen)
    s = sub.add_parser("keylist", help="the release key list, signed by the root key")
    s.add_argument("--root", required=True, help="the root key (PEM)")
    s.add_argument("--key", action="append", required=True, help="ID=PUBFILE:kiosk,supervisor (repeat)")
    s.add_argument("--serial", type=int, required=True, help="higher than every list published before")
    s.add_argument("--valid-days", type=int, default=365)
    s.add_argument("--out", required=True)
    s.set_defaults(func=cmd_keylist)
    s = sub.add_parser("build", help="build an unsigned bundle")
    s.add_argument("component", choices=R.COMPONENTS)
    s.add_argument("--out", required=True)
    s.add_argument("--version", help="kiosk: the release version")
    s.add_argument("--checkout", help="kiosk: a source checkout to pip wheel (with its dependencies)")
    s.add_argument("--wheels", help="kiosk: a folder of wheels already built")
    s.add_argument("--pip-arg", action="append", default=[], help="extra pip wheel argument (repeat)")
    s.add_argument("--firmware-dir", help="supervisor: a folder firmware.build already wrote")
    s.add_argument("--min-from", default="0.0.0", help="the oldest installed version this updates from")
    s.add_argument("--valid-days", type=int, default=90)
    s.set_defaults(func=cmd_build)
    s = sub.add_parser("sign", help="sign a bundle's manifest with a release key")
    s.add_argument("bundle")
    s.add_argument("--key", required=True)
    s.add_argument("--key-id", required=True)
    s.set_defaults(func=cmd_sign)
    s = sub.add_parser("verify", help="run a device's checks on a bundle")
    s.add_argument("bundle")
    s.add_argument("--keys", required=True, help="the key list (JSON)")
    s.add_argument("--root-pub", required=True, help="file holding the root public key (base64)")
    s.add_argument("--component", choices=R.COMPONENTS)
    s.add_argument("--installed", help="the version a device runs now")
    s.set_defaults(func=cmd_verify)
    s = sub.add_parser("publish", help="upload a signed bundle to the controller (resumes a dropped upload)")
    s.add_argument("bundle")
    s.add_argument("--controller", required=True, help="the controller console's address, https://host:port")
    s.add_argument("--token-file", required=True, help="file holding an admin API token (kt_...)")
    s.add_argument("--ca", help="CA file to check the controller's certificate")
    s.add_argument("--chunk", type=int, default=512 * 1024, help="bytes per uploaded piece (default 512 KiB)")
    s.set_defaults(func=cmd_publish)
    return p


def main(argv: list[str] | None = None) -> int:
    args = parser().parse_args(argv)
    try:
        return args.func(args)
    except KioskError as exc:
        print(f"kiosk-release {args.command}: {exc}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
