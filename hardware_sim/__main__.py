"""``python -m hardware_sim DEVICE --link PATH [--out DIR] [--control SOCK] [--baud N]``: serve a simulated device.

``--protocol 1`` (supervisor only) simulates a board still on firmware 1.1.0, which speaks link
protocol 1, until it is flashed (docs/firmware.md, "Simulator").
"""

from __future__ import annotations

import argparse
import importlib
import sys
from pathlib import Path

from foundation.logs import setup_logging

# device name -> "module:class"; each simulator lives in its own module.
DEVICES = {
    "printer": "hardware_sim.printer:PrinterSim",
    "id-reader": "hardware_sim.id_reader:IdReaderSim",
    "card-reader": "hardware_sim.card_reader:CardReaderSim",
    "scanner": "hardware_sim.scanner:ScannerSim",
    "supervisor": "hardware_sim.supervisor:SupervisorSim",
}


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m hardware_sim", description=__doc__)
    p.add_argument("device", choices=sorted(DEVICES), help="which device to simulate")
    p.add_argument("--link", required=True, type=Path, help="path to create as a symlink to the pseudo-terminal")
    p.add_argument("--out", type=Path, help="folder for outputs (printed receipts)")
    p.add_argument("--control", type=Path,
                   help="also take the stdin control commands on a unix socket at this path (0600)")
    p.add_argument("--baud", type=int, default=115200, help="line rate used to pace answers (default 115200)")
    p.add_argument("--protocol", type=int, choices=(1, 2),
                   help="supervisor only: link protocol of the simulated board; 1 = firmware 1.1.0 until "
                        "it is flashed (default 2)")
    return p


def load_device(name: str, out: Path | None, protocol: int | None = None):
    module, cls = DEVICES[name].split(":")
    device_cls = getattr(importlib.import_module(module), cls)
    if protocol is None:
        return device_cls(out)
    return device_cls(out, protocol=protocol)


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    setup_logging()
    from hardware_sim.pty_device import PtyServer

    link: Path = args.link
    if not link.parent.is_dir():
        print(f"error: cannot create --link {link}: folder {link.parent} does not exist", file=sys.stderr)
        return 2
    if link.exists() and not link.is_symlink():
        print(f"error: cannot create --link {link}: a file that is not a symlink is in the way", file=sys.stderr)
        return 2
    if not (args.baud > 0):
        print(f"error: --baud must be positive, got {args.baud}", file=sys.stderr)
        return 2
    if args.protocol is not None and args.device != "supervisor":
        print(f"error: --protocol applies to the supervisor simulator only, not {args.device}", file=sys.stderr)
        return 2
    try:
        device = load_device(args.device, args.out, args.protocol)
        server = PtyServer(device, link, baud=args.baud)
        server.serve(args.device, control=args.control)
    except PermissionError as exc:
        print(f"error: cannot create --link {link}: {exc.strerror}", file=sys.stderr)
        return 2
    except OSError as exc:
        print(f"error: {args.device} simulator: {exc}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
