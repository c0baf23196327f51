"""Provisioning benchmark: enrol one kiosk over HTTP, and issue 1,000 kiosk identities.

Run: ``.venv/bin/python benchmarks/provisioning_bench.py [--count 1000]``. Targets: one
enrolment (key on the kiosk, CSR, token exchange over HTTP, config written) within 5 s; 1,000
identities (EC P-256 key + CSR + check + sign + index record) within 60 s.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from controller import enrolment_service  # noqa: E402
from controller.enrolment_server import EnrolmentServer, open_context  # noqa: E402
from provisioning import (
    enrol_client,
    fleet_ca,  # noqa: E402
    pki,
)

PASS = b"benchmark-passphrase"


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=(__doc__ or "").split("\n")[0])
    p.add_argument("--count", type=int, default=1000)
    args = p.parse_args(argv)
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        t0 = time.perf_counter()
        lay = fleet_ca.init_fleet(root / "fleet", PASS, hosts=["localhost"])
        print(f"init-fleet: {time.perf_counter() - t0:.3f} s")

        ctx = open_context(lay.root, PASS, broker_url="mqtts://localhost:8883")
        server = EnrolmentServer(ctx).start()
        try:
            times = []
            for i in range(5):
                tok = enrolment_service.issue_token(ctx.conn, "bench-site", now=time.time())["token"]
                t0 = time.perf_counter()
                enrol_client.enroll(server.url, token=tok, kiosk_id=f"bench-{i}", site="bench-site",
                                    config_path=root / f"k{i}" / "kiosk.toml", ca_hash=pki.fingerprint(ctx.ca.cert))
                times.append(time.perf_counter() - t0)
        finally:
            server.stop()
        times.sort()
        print(f"enrol one kiosk over HTTP: median {times[2] * 1000:.1f} ms, worst {times[-1] * 1000:.1f} ms "
              f"(target 5 s)")

        ca = fleet_ca.load_ca(lay, PASS)
        t0 = time.perf_counter()
        for i in range(args.count):
            fleet_ca.issue_identity(ca, ctx.index, f"kiosk-{i:05d}", "bulk", pki.utcnow())
        dt = time.perf_counter() - t0
        print(f"issue {args.count} identities: {dt:.2f} s ({args.count / dt:.0f}/s; target 1000 within 60 s)")
        t0 = time.perf_counter()
        for i in range(0, args.count, 2):
            ctx.index.revoke(f"kiosk-{i:05d}", pki.utcnow())
        fleet_ca.write_crl(lay, ca, ctx.index, pki.utcnow())
        print(f"revoke {args.count // 2} and write the CRL: {time.perf_counter() - t0:.2f} s")
        ctx.index.close()
        ctx.conn.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
