"""``kiosk`` runs on the allocator that overwrites freed memory however it was started."""

from __future__ import annotations

import os
import subprocess
import sys

from benchmarks.soak_resident import service_env
from kiosk_ui import private_memory as P
from tests.support.processes import REPO


def test_the_unit_file_and_the_app_ask_for_the_same_allocator():
    env = service_env()
    assert {k: env[k] for k in P.ALLOCATOR_ENV} == P.ALLOCATOR_ENV
    assert P.missing(env) == {}


def test_missing_keeps_other_tunables_and_fixes_wrong_values():
    got = P.missing({"PYTHONMALLOC": "pymalloc", "GLIBC_TUNABLES": "glibc.malloc.arena_max=2:glibc.malloc.perturb=0"})
    assert got == {"PYTHONMALLOC": "malloc", "GLIBC_TUNABLES":
                   "glibc.malloc.arena_max=2:glibc.malloc.perturb=165:glibc.malloc.tcache_count=0"}


def test_a_process_started_without_the_settings_re_executes_itself_once_with_them():
    code = ("import os, sys; from kiosk_ui import private_memory as p; pid = os.getpid(); p.ensure(); "
            "print(os.environ['PYTHONMALLOC'], os.environ['GLIBC_TUNABLES'], pid == os.getpid(), sys.argv[1:])")
    env = {k: v for k, v in os.environ.items() if k not in P.ALLOCATOR_ENV}
    out = subprocess.run([sys.executable, "-c", code, "--a", "b"], env={**env, "PYTHONPATH": str(REPO)},
                         capture_output=True, text=True, timeout=60, check=True).stdout.split(None, 2)
    assert out[:2] == ["malloc", P.ALLOCATOR_ENV["GLIBC_TUNABLES"]]
    assert out[2].strip() == "True ['--a', 'b']"  # same process, same arguments
