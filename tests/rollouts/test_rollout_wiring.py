"""The roll-out job gets its collaborators through its constructor: the console's routes, its live
watch and kioskctl never set attributes on it (the rule of tests/architecture/test_wiring.py)."""

from __future__ import annotations

import ast

from controller import rollout_job
from controller.web.release_files import DownloadLimit
from tests.architecture.test_imports import REPO

USERS = [REPO / "controller" / "ctl_rollouts.py", *sorted((REPO / "controller" / "web").glob("rollout_*.py"))]


def sets_on_the_job(tree: ast.AST) -> list[str]:
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Assign):
            targets = node.targets
        elif isinstance(node, ast.AugAssign | ast.AnnAssign):
            targets = [node.target]
        else:
            continue
        for t in targets:
            for part in ast.walk(t):
                if isinstance(part, ast.Attribute) and isinstance(part.value, ast.Name) and part.value.id == "job":
                    found.append(f"{node.lineno}: sets {ast.unparse(t)}")
    return found


def test_no_user_of_the_job_sets_its_attributes():
    found = {str(p.relative_to(REPO)): v for p in USERS if (v := sets_on_the_job(ast.parse(p.read_text("utf-8"))))}
    assert not found, f"hand the job what it needs through RolloutJob(...): {found}"


def test_the_check_catches_the_old_download_wiring():
    old = ast.parse("job.downloads = DownloadLimit(1, 2)\njob.base_url, zone = f()\njob.n += 1\n")
    assert sets_on_the_job(old) == ["1: sets job.downloads", "2: sets (job.base_url, zone)", "3: sets job.n"]


def test_the_download_limit_comes_through_the_constructor(tmp_path):
    from controller.rollout_store import RolloutStore

    mine = DownloadLimit(1000.0, 100.0)
    job = rollout_job.RolloutJob(tmp_path, RolloutStore(tmp_path), send=print, audit=print, base_url="",
                                 clock=lambda: 0.0, downloads=mine)
    assert job.downloads is mine
    made = rollout_job.RolloutJob(tmp_path, RolloutStore(tmp_path), send=print, audit=print, base_url="",
                                  clock=lambda: 0.0, download_rate=500.0, download_rate_per_kiosk=50.0)
    assert made.downloads.bucket is not None and made.downloads.per_kiosk == 50.0
