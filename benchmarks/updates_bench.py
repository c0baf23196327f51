"""Update benchmarks (issue 15, device side): download size, switch times, firmware staging.

1. **One-module change vs the full kiosk bundle.** A kiosk bundle of real wheels: the project
   (packed from this checkout) and every installed distribution it needs at run time (repacked
   from .venv, so no package index is needed). Then one module changes; a kiosk that has the
   first release fetches the second from a local HTTP server through the updater's Fetcher.
   Reported: full bundle bytes, bytes downloaded for the change, the ratio. Goal: at most 5 %.
2. **Switch to committed / to rolled back.** Real releases (tests/updates/probe.py: a small app
   carrying the real health reporter) installed with pip --no-index into their own venvs; the
   app reaches a real Mosquitto. Health window shortened to ``--window`` seconds. Reported: switch
   -> committed (healthy), switch -> rolled back and the old release running again (crash on
   import; never reaches the broker, with ``--deadline``).
3. **Firmware staged update over the link** (device_drivers.supervisor_flash.stage_over_link) against the
   simulator on a pty at 115200 baud, first run and second run (nothing to send), vs the wire
   time of the bytes the host sent; and the board's heap during a staged file transfer and
   through a whole staged update (one file_check per file before the switch, and as a host
   before 1.5.1 sends it, without), measured as benchmarks/firmware_bench.py does (MicroPython
   1.27, upper bound).
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
import zipfile
from importlib import metadata
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from benchmarks import firmware_bench as FB  # noqa: E402
from contract import release as R  # noqa: E402
from firmware import VERSION  # noqa: E402
from kiosk_ui.updater.fetch import Fetcher, from_folder  # noqa: E402
from kiosk_ui.updater.health import HealthPolicy  # noqa: E402
from kiosk_ui.updater.install import Installer  # noqa: E402
from kiosk_ui.updater.state import Layout  # noqa: E402
from kiosk_ui.updater.switch import Switcher  # noqa: E402
from kiosk_ui.updater.watch import watch  # noqa: E402
from provisioning import release_build as B  # noqa: E402
from tests.support.broker import Mosquitto  # noqa: E402
from tests.support.bundle_server import BundleServer  # noqa: E402
from tests.updates.probe import Releases, Service  # noqa: E402

PACKAGES = ("foundation", "contract", "kiosk_ui", "controller", "firmware", "device_drivers", "provisioning",
            "hardware_sim")
FIXED = (2026, 1, 1, 0, 0, 0)  # fixed zip times: unchanged sources give byte-identical wheels


def _zip(path: Path, entries: list[tuple[str, Path]]) -> Path:
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as zf:
        for arc, src in sorted(entries):
            zf.writestr(zipfile.ZipInfo(arc, date_time=FIXED), src.read_bytes())
    return path


def project_wheel(out: Path, src: Path, version: str) -> Path:
    entries = [(str(p.relative_to(src)), p) for pkg in PACKAGES for p in (src / pkg).rglob("*")
               if p.is_file() and "__pycache__" not in p.parts]
    return _zip(out / f"community_kiosk-{version}-py3-none-any.whl", entries)


def runtime_closure(name: str = "community-kiosk") -> list[metadata.Distribution]:
    """Installed distributions the project needs at run time (no extras)."""
    seen: dict[str, metadata.Distribution] = {}
    todo = [name]
    while todo:
        dist = metadata.distribution(todo.pop())
        key = dist.metadata["Name"].lower().replace("_", "-")
        if key in seen:
            continue
        seen[key] = dist
        for req in dist.requires or []:
            if "extra ==" in req:
                continue
            dep = req.split(";")[0].split("[")[0].split("(")[0]
            for sep in "<>=!~ ":
                dep = dep.split(sep)[0]
            try:
                metadata.distribution(dep)
                todo.append(dep)
            except metadata.PackageNotFoundError:
                pass
    seen.pop(name, None)
    return list(seen.values())


def repack(dist: metadata.Distribution, out: Path) -> Path:
    base = Path(str(dist.locate_file("")))
    entries = [(str(f), base / f) for f in dist.files or [] if (base / f).is_file() and "__pycache__" not in str(f)]
    name = dist.metadata["Name"].replace("-", "_")
    return _zip(out / f"{name}-{dist.version}-py3-none-any.whl", entries)


def delta() -> dict:
    with tempfile.TemporaryDirectory() as tmp:
        t = Path(tmp)
        deps = t / "deps"
        deps.mkdir()
        for dist in runtime_closure():
            repack(dist, deps)
        src = t / "src"
        for pkg in PACKAGES:
            import shutil

            shutil.copytree(REPO / pkg, src / pkg, ignore=shutil.ignore_patterns("__pycache__"))
        bundles = []
        for version in ("1.0.0", "1.0.1"):
            if version == "1.0.1":  # the one-module change
                mod = src / "kiosk_ui" / "updater" / "health.py"
                mod.write_text(mod.read_text() + "\n# changed for the benchmark\n")
            wheels = t / f"wheels-{version}"
            wheels.mkdir()
            for w in deps.iterdir():
                (wheels / w.name).write_bytes(w.read_bytes())
            project_wheel(wheels, src, version)
            out = t / f"bundle-{version}"
            bundles.append(B.build_kiosk(out, version=version, wheels=wheels, now=int(time.time())))
        objects = t / "kiosk-objects"
        reports = []
        for version, man in zip(("1.0.0", "1.0.1"), bundles, strict=True):
            with BundleServer(t / f"bundle-{version}") as srv:
                f = Fetcher(srv.url, objects, sleep=time.sleep)
                for entry in man.files:
                    f.ensure(entry)
            reports.append(f.report)
    full = bundles[1].total_size
    project = next(e.size for e in bundles[1].files if "community_kiosk" in e.path)
    return {"wheels": len(bundles[1].files), "full_bundle_bytes": full, "project_wheel_bytes": project,
            "first_download_bytes": reports[0].downloaded, "change_download_bytes": reports[1].downloaded,
            "change_objects": reports[1].objects, "ratio_pct": round(100 * reports[1].downloaded / full, 2)}


def switch_times(window: float, deadline: float) -> dict:
    out = {}
    with tempfile.TemporaryDirectory() as tmp:
        t = Path(tmp)
        rel = Releases(t / "releases", int(time.time()))
        for version, kw in [("1.0.0", {}), ("2.0.0", {}), ("3.0.0", {"crash": True}), ("4.0.0", {"broker": False})]:
            rel.bundle(version, **kw)
        broker = Mosquitto(t / "broker").start()
        try:
            for case, version in (("committed", "2.0.0"), ("rolled_back_crash", "3.0.0"),
                                  ("rolled_back_no_broker", "4.0.0")):
                lay = Layout(t / f"opt-{case}")
                inst = Installer(lay, root_key=rel.root.public_key(), clock=time.time)
                inst.accept_key_list(rel.key_list)
                sw = Switcher(lay, clock=time.time, policy=HealthPolicy(window_s=window, signal_deadline_s=deadline))
                for v in ("1.0.0", version):
                    bundle = rel.base / f"bundle-{v}"
                    man = inst.check((bundle / R.MANIFEST_FILE).read_bytes(), sw.current())
                    t0 = time.perf_counter()
                    inst.install(man, from_folder(bundle, lay.objects))
                    out.setdefault("install_s", round(time.perf_counter() - t0, 2))
                    if v == "1.0.0":
                        sw.activate_first(v)
                svc = Service(type("K", (), {"lay": lay})(), broker.port, t / f"health-{case}")
                t0 = time.perf_counter()
                sw.switch(version)
                svc.start()
                result = watch(sw, svc.observe, restart=svc.start, wait=time.sleep, interval=0.1)
                running = svc.running_version()
                took = time.perf_counter() - t0
                svc.stop()
                out[case] = {"status": result.status, "seconds": round(took, 2), "running": running,
                             "reason": result.reason}
        finally:
            broker.stop()
    out["window_s"], out["deadline_s"] = window, deadline
    return out


def firmware_staged() -> dict:
    from device_drivers import supervisor_flash as flash
    from device_drivers.supervisor import SupervisorDriver
    from firmware import link as L

    with tempfile.TemporaryDirectory() as tmp:
        t = Path(tmp)
        from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

        root, key = Ed25519PrivateKey.generate(), Ed25519PrivateKey.generate()
        now = int(time.time())
        keys = R.verify_key_list(B.build_key_list(root, [("rk", R.key_text(key), ["supervisor"])], serial=1, now=now),
                                 root.public_key(), now=now)
        B.build_supervisor(t / "bundle", now=now)
        B.sign_bundle(t / "bundle", key, "rk")
        man = B.verify_bundle(t / "bundle", keys, now=now, component="supervisor")
        link = t / "sup.tty"
        proc = FB.start_sim("supervisor", link, out=t / "board")
        try:
            with SupervisorDriver(str(link), baudrate=FB.BAUD) as drv:
                drv.hello()
                sent = [0]
                inner = drv._port.write

                def counted(data: bytes):
                    sent[0] += len(data)
                    return inner(data)

                drv._port.write = counted  # type: ignore[method-assign]
                t0 = time.perf_counter()
                flash.stage_over_link(drv, t / "bundle", man)
                t1 = time.perf_counter()
                first_sent = sent[0]
                proc.wait_for(lambda s: '"ev": "boot"' in s and '"set": "sets/' in s, timeout=30)
                drv.hello()
                t2 = time.perf_counter()
                again = flash.stage_over_link(drv, t / "bundle", man)
                t3 = time.perf_counter()
        finally:
            proc.stop()
    chunks = sum(-(-e.size // L.FILE_CHUNK) for e in man.files) + 2  # + set.txt and the pointer
    frames = 4 * len(man.files) + 5  # info, open, commit, file_check per file; open + commit of set.txt, pointer; reset
    wire = (first_sent + FB.DATA_REPLY * chunks + 40 * frames) * 10 / FB.BAUD
    return {"files": len(man.files), "bytes": man.total_size, "seconds": round(t1 - t0, 2),
            "host_bytes_sent": first_sent, "wire_s": round(wire, 2), "ratio": round((t1 - t0) / wire, 2),
            "second_run_s": round(t3 - t2, 2), "second_run_copied": len(again.copied)}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--window", type=float, default=2.0, help="health window for the switch timings (s)")
    ap.add_argument("--deadline", type=float, default=10.0, help="signal deadline for the switch timings (s)")
    ap.add_argument("--skip", action="append", default=[], choices=["delta", "switch", "firmware", "heap"])
    args = ap.parse_args(argv)
    figures = {}
    if "delta" not in args.skip:
        figures["delta"] = delta()
    if "switch" not in args.skip:
        figures["switch"] = switch_times(args.window, args.deadline)
    if "firmware" not in args.skip:
        figures["firmware_staged"] = firmware_staged()
    if "heap" not in args.skip:
        figures["staged_transfer_heap"] = FB.transfer_heap(prefix=f"sets/{VERSION}/")
        figures["staged_update_heap"] = FB.staged_update_heap()
        figures["staged_update_heap_old_host"] = FB.staged_update_heap(checks=False)
    print(json.dumps(figures, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
