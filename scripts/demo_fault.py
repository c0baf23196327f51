"""Faults on demand: drive a running demo kiosk's simulated device through its control socket.

    scripts/demo-fault KIOSK DEVICE 'JSON'       e.g. GD-DEMO-0001 printer '{"cmd": "paper", "state": "out"}'
    scripts/demo-fault KIOSK                     lists the kiosk's devices that can be driven

DEVICE is the kiosk's device name (printer, id_reader, card_reader, scanner, supervisor; the
simulator names id-reader and card-reader work too). The JSON is one simulator control command,
the same as on the simulator's stdin (README, "Hardware simulators"). The simulator's answer is
printed; the exit code is 0 when it says ``"ok": true``, 1 when it refuses, 2 for a bad call.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from foundation.errors import TransportError  # noqa: E402
from hardware_sim.control_socket import send  # noqa: E402
from kiosk_ui.simulated import DEVICES, control_path  # noqa: E402


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="scripts/demo-fault", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("kiosk", help="kiosk id, e.g. GD-DEMO-0001 or GD-DEMO-WINDOW")
    p.add_argument("device", nargs="?", help="printer, id_reader, card_reader, scanner or supervisor")
    p.add_argument("command", nargs="?", help='one control command as JSON, e.g. \'{"cmd": "paper", "state": "out"}\'')
    p.add_argument("--data-dir", type=Path, default=ROOT / "demo-data", help="the demo's folder (default demo-data)")
    args = p.parse_args(argv)
    dev_dir = args.data_dir / "kiosks" / args.kiosk / "dev"
    if not dev_dir.is_dir():
        print(f"error: no kiosk {args.kiosk!r} in {args.data_dir / 'kiosks'}", file=sys.stderr)
        return 2
    if args.device is None:
        for port, sim in DEVICES.items():
            if control_path(dev_dir, sim).is_socket():
                print(port)
        return 0
    sim = DEVICES.get(args.device.replace("-", "_"))
    if sim is None:
        print(f"error: unknown device {args.device!r}; one of {', '.join(DEVICES)}", file=sys.stderr)
        return 2
    if args.command is None:
        p.error("give the control command as JSON")
    try:
        cmd = json.loads(args.command)
    except json.JSONDecodeError as exc:
        print(f"error: the command is not JSON ({exc}); e.g. '{{\"cmd\": \"paper\", \"state\": \"out\"}}'",
              file=sys.stderr)
        return 2
    if not isinstance(cmd, dict) or not isinstance(cmd.get("cmd"), str):
        print('error: the command must be an object with "cmd", e.g. {"cmd": "cover", "open": true}', file=sys.stderr)
        return 2
    try:
        reply = send(control_path(dev_dir, sim), cmd)
    except TransportError as exc:
        print(f"error: {args.kiosk} {args.device}: {exc}", file=sys.stderr)
        return 2
    print(json.dumps(reply, ensure_ascii=False))
    return 0 if reply.get("ok") else 1


if __name__ == "__main__":
    sys.exit(main())
