"""Run Python files under real MicroPython 1.27 (WebAssembly port under Node.js)."""

from __future__ import annotations

import os
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
RUNNER = Path(__file__).with_name("mprun.mjs")
NODE_PATH = REPO / ".tools" / "mp"


@dataclass(frozen=True)
class MicroPythonResult:
    returncode: int
    stdout: str
    stderr: str

    def check(self) -> MicroPythonResult:
        if self.returncode != 0:
            raise AssertionError(f"MicroPython failed ({self.returncode}):\n{self.stdout}\n{self.stderr}")
        return self


def micropython_available() -> bool:
    return shutil.which("node") is not None and (
        NODE_PATH / "node_modules" / "@micropython" / "micropython-webassembly-pyscript"
    ).is_dir()


def run_micropython(
    script: str | Path,
    *,
    roots: tuple[Path, ...] = (REPO / "firmware",),
    heap: int = 1024 * 1024,
    timeout: float = 120,
) -> MicroPythonResult:
    """Run ``script`` (a path or source text) under MicroPython with ``roots`` importable from ``/``."""
    if not micropython_available():
        raise RuntimeError("MicroPython WebAssembly port not installed: run scripts/bootstrap")
    if isinstance(script, str) and not script.endswith(".py"):
        tmp = Path(os.environ.get("TMPDIR", "/tmp")) / f"mp_{os.getpid()}_{abs(hash(script))}.py"
        tmp.write_text(script, encoding="utf-8")
        script = tmp
    cmd = ["node", str(RUNNER), "--heap", str(heap)]
    for root in roots:
        cmd += ["--root", str(root)]
    cmd.append(str(script))
    env = dict(os.environ, MICROPYTHON_NODE_PATH=str(NODE_PATH))
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, env=env)
    return MicroPythonResult(proc.returncode, proc.stdout, proc.stderr)
