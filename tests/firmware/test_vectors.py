"""The shared firmware test vectors, on CPython (one test each) and under real MicroPython 1.27."""

from __future__ import annotations

import importlib.util
import re
from pathlib import Path

import pytest

from tests.support.micropython import micropython_available, run_micropython

VECTORS = Path(__file__).with_name("vectors_mp.py")


def _load():
    spec = importlib.util.spec_from_file_location("vectors_mp", VECTORS)
    assert spec and spec.loader
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


vectors = _load()
NAMES = sorted(n for n in dir(vectors) if n.startswith("t_"))


@pytest.mark.parametrize("name", NAMES)
def test_vector_cpython(name: str) -> None:
    getattr(vectors, name)()


@pytest.mark.skipif(not micropython_available(), reason="MicroPython WebAssembly port not installed")
def test_vectors_micropython() -> None:
    result = run_micropython(VECTORS).check()
    last = result.stdout.strip().splitlines()[-1]
    assert re.fullmatch(r"OK \d+", last), result.stdout
    assert int(last.split()[1]) == len(NAMES)
