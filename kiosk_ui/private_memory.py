"""The allocator the kiosk app runs with, so a resident's data does not linger in freed memory.

CPython's own allocator and glibc's per-thread cache keep freed blocks intact, so an ID card's text
block that a session wiped every reference to can still be read from a memory dump until the
block is reused (soak check ``resident_data_in_memory``, docs/benchmarks.md). With Python objects
on glibc's malloc, which overwrites every freed block (perturb) and has no per-thread cache that
would skip that, it cannot. ``deploy/systemd/kiosk.service`` sets these variables; ``kiosk``
started any other way (by hand, a demo script, an older unit file) re-executes itself once with
them before anything is read (same process id, same arguments), because an allocator cannot be
changed in a running interpreter.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Callable, Mapping

ALLOCATOR_ENV = {"PYTHONMALLOC": "malloc",
                 "GLIBC_TUNABLES": "glibc.malloc.perturb=165:glibc.malloc.tcache_count=0"}
_REEXEC_MARK = "KIOSK_ALLOCATOR_SET"  # one re-exec at most, even if an exec dropped the variables


def missing(environ: Mapping[str, str]) -> dict[str, str]:
    """The variables to set (GLIBC_TUNABLES merged with tunables already given), {} when all are."""
    need: dict[str, str] = {}
    if environ.get("PYTHONMALLOC") != ALLOCATOR_ENV["PYTHONMALLOC"]:
        need["PYTHONMALLOC"] = ALLOCATOR_ENV["PYTHONMALLOC"]
    tunables, wanted = _tunables(environ.get("GLIBC_TUNABLES", "")), _tunables(ALLOCATOR_ENV["GLIBC_TUNABLES"])
    if any(tunables.get(k) != v for k, v in wanted.items()):
        need["GLIBC_TUNABLES"] = ":".join(f"{k}={v}" for k, v in {**tunables, **wanted}.items())
    return need


def _tunables(text: str) -> dict[str, str]:
    pairs = (t.partition("=") for t in text.split(":") if t)
    return {name: value for name, _, value in pairs}


def ensure(environ: Mapping[str, str] | None = None,
           execve: Callable[[str, list[str], dict[str, str]], object] = os.execve) -> None:
    """Re-execute this interpreter with :data:`ALLOCATOR_ENV` unless it already runs with it."""
    env = dict(os.environ if environ is None else environ)
    need = missing(env)
    if not need or env.get(_REEXEC_MARK):
        return
    sys.stdout.flush()
    sys.stderr.flush()
    execve(sys.executable, [sys.executable, *sys.orig_argv[1:]], {**env, **need, _REEXEC_MARK: "1"})
