"""Real wheels for update tests, written without a build backend (a wheel is a zip with
METADATA, WHEEL, entry_points.txt and RECORD), so a test bundle installs with real
``pip --no-index`` in seconds and without network."""

from __future__ import annotations

import base64
import hashlib
import zipfile
from pathlib import Path


def _record_hash(data: bytes) -> str:
    return "sha256=" + base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=").decode()


def make_wheel(out_dir: Path, name: str, version: str, files: dict[str, str],
               scripts: dict[str, str] | None = None) -> Path:
    """Write ``{name}-{version}-py3-none-any.whl`` holding ``files`` (path -> source text) and
    console ``scripts`` (name -> "module:function"); returns its path."""
    dist = f"{name}-{version}.dist-info"
    entries: dict[str, bytes] = {path: text.encode() for path, text in files.items()}
    entries[f"{dist}/METADATA"] = f"Metadata-Version: 2.1\nName: {name}\nVersion: {version}\n".encode()
    entries[f"{dist}/WHEEL"] = b"Wheel-Version: 1.0\nGenerator: tests\nRoot-Is-Purelib: true\nTag: py3-none-any\n"
    if scripts:
        lines = "".join(f"{k} = {v}\n" for k, v in scripts.items())
        entries[f"{dist}/entry_points.txt"] = f"[console_scripts]\n{lines}".encode()
    record = "".join(f"{p},{_record_hash(d)},{len(d)}\n" for p, d in sorted(entries.items()))
    record += f"{dist}/RECORD,,\n"
    entries[f"{dist}/RECORD"] = record.encode()
    out_dir.mkdir(parents=True, exist_ok=True)
    path = out_dir / f"{name}-{version}-py3-none-any.whl"
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as zf:
        for p in sorted(entries):
            # Fixed timestamps: the same sources give the same bytes, as content addressing expects.
            info = zipfile.ZipInfo(p, date_time=(2026, 1, 1, 0, 0, 0))
            zf.writestr(info, entries[p])
    return path
