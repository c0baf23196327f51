"""``kioskctl``: the operator's command line for the fleet controller."""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

from controller.store import StoreError, connect, list_kiosks


def build_parser() -> argparse.ArgumentParser:
    # Global options are accepted before or after the subcommand.
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--data-dir", type=Path, default=argparse.SUPPRESS,
                        help="the controller's data folder (default ./controller-data)")
    common.add_argument("--json", action="store_true", default=argparse.SUPPRESS,
                        help="machine-readable JSON output")
    p = argparse.ArgumentParser(prog="kioskctl", description="Operate the kiosk fleet from the command line.",
                                parents=[common])
    sub = p.add_subparsers(dest="command", required=True)
    st = sub.add_parser("status", help="list the kiosks with state and last seen", parents=[common])
    st.add_argument("--state", help="only kiosks in this state (online, offline, stale)")
    return p


def _age(seconds: float) -> str:
    if seconds < 120:
        return f"{seconds:.0f}s ago"
    if seconds < 7200:
        return f"{seconds / 60:.0f}m ago"
    return f"{seconds / 3600:.1f}h ago"


def cmd_status(args: argparse.Namespace) -> int:
    conn = connect(args.data_dir, readonly=True)
    kiosks = list_kiosks(conn)
    if args.state:
        kiosks = [k for k in kiosks if k["state"] == args.state]
    now = time.time()
    if args.json:
        print(json.dumps([
            {"kiosk_id": k["kiosk_id"], "state": k["state"], "reason": k["reason"], "mode": k["mode"],
             "site": k["site"], "last_seen": k["last_seen"], "state_since": k["state_since"]}
            for k in kiosks
        ], ensure_ascii=False, indent=2))
        return 0
    if not kiosks:
        print("no kiosks registered yet")
        return 0
    print(f"{'KIOSK':<24} {'STATE':<8} {'MODE':<14} {'LAST SEEN':<10} REASON")
    for k in kiosks:
        print(f"{k['kiosk_id']:<24} {k['state']:<8} {k['mode'] or '-':<14} "
              f"{_age(now - k['last_seen']):<10} {k['reason']}")
    online = sum(1 for k in kiosks if k["state"] == "online")
    print(f"{online}/{len(kiosks)} online")
    return 0


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    args.data_dir = getattr(args, "data_dir", Path("controller-data"))
    args.json = getattr(args, "json", False)
    try:
        return {"status": cmd_status}[args.command](args)
    except StoreError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
