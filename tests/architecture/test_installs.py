"""Installs fit their machine: the controller runs without Kivy, the kiosk agent without the web stack.

setup.cfg splits the third-party libraries into the core (what every part needs) and the extras
``[kiosk]`` and ``[controller]``. Two checks keep that honest: a subprocess imports every module of
a machine's packages with the other machine's libraries made unimportable, and an ``ast`` scan
(function-local imports included, which an import alone would not run) finds any use of a library
the package's machine does not install.
"""

from __future__ import annotations

import ast
import configparser
import json
import subprocess
import sys

import pytest

from tests.architecture.test_imports import REPO, imported_modules, product_packages

# Import names of the libraries each extra brings (setup.cfg [options.extras_require]).
EXTRA_IMPORTS = {
    "kiosk": {"kivy", "PIL", "qrcode"},
    "controller": {"starlette", "uvicorn", "jinja2", "multipart", "python_multipart"},
}
# The extras under which each package's code runs; a package absent here needs the core only.
PACKAGE_EXTRAS = {
    "kiosk_ui": {"kiosk"},
    "hardware_sim": {"kiosk"},  # the simulated printer renders receipts (Pillow, qrcode)
    "device_drivers": {"kiosk"},  # raster images on the printer (Pillow)
    "provisioning": {"kiosk"},  # self-test runs on the kiosk; it shows its report as a QR code
    "controller": {"controller"},
}

# Blocks the named top-level modules, as if their distributions were not installed.
BLOCKER = """
import importlib, importlib.abc, json, pkgutil, sys
blocked, packages = set(json.loads(sys.argv[1])), json.loads(sys.argv[2])
class Block(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] in blocked:
            raise ModuleNotFoundError(f"No module named {name!r} (blocked by the test)", name=name)
        return None
sys.meta_path.insert(0, Block())
failed = []
for package in packages:
    root = importlib.import_module(package)
    # walk_packages imports subpackages to look inside; one that fails is reported, not skipped.
    walk = pkgutil.walk_packages(root.__path__, package + ".",
                                 onerror=lambda name: failed.append(f"{name}: {sys.exc_info()[1]!r}"))
    names = [package] + [m.name for m in walk]
    for name in names:
        if name.endswith("__main__"):
            continue
        try:
            importlib.import_module(name)
        except Exception as exc:
            failed.append(f"{name}: {exc!r}")
print("\\n".join(failed))
sys.exit(1 if failed else 0)
"""


def import_without(blocked: set[str], packages: list[str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-c", BLOCKER, json.dumps(sorted(blocked)), json.dumps(packages)],
        cwd=REPO, capture_output=True, text=True, timeout=120,
    )


def test_the_controller_and_provisioning_import_without_kivy():
    done = import_without({"kivy"}, ["controller", "provisioning", "contract", "foundation"])
    assert done.returncode == 0, f"modules that need Kivy on the controller server:\n{done.stdout}{done.stderr}"


def test_the_kiosk_imports_without_the_web_stack():
    packages = ["kiosk_ui", "device_drivers", "hardware_sim", "contract", "foundation"]
    done = import_without(EXTRA_IMPORTS["controller"], packages)
    assert done.returncode == 0, f"kiosk modules that need the web stack:\n{done.stdout}{done.stderr}"


def test_the_blocker_really_blocks():
    done = import_without({"starlette"}, ["controller"])
    assert done.returncode == 1 and "controller.web" in done.stdout and "blocked by the test" in done.stdout


@pytest.mark.parametrize("package", ["foundation", "contract", "firmware", "device_drivers",
                                     "hardware_sim", "kiosk_ui", "controller", "provisioning"])
def test_each_package_uses_only_the_libraries_its_machine_installs(package):
    allowed = set().union(*(EXTRA_IMPORTS[e] for e in PACKAGE_EXTRAS.get(package, set())))
    foreign = set().union(*EXTRA_IMPORTS.values()) - allowed
    uses = []
    for path in sorted((REPO / package).rglob("*.py")):
        for module, line in imported_modules(ast.parse(path.read_text(encoding="utf-8"))):
            if module.split(".")[0] in foreign:
                uses.append(f"{path.relative_to(REPO)}:{line} imports {module}")
    assert not uses, f"{package} imports libraries its machine's extras do not install: {uses}"


def test_the_extras_in_setup_cfg_match_this_test():
    cfg = configparser.ConfigParser()
    cfg.read(REPO / "setup.cfg")
    extras = cfg["options.extras_require"]
    core = cfg["options"]["install_requires"]
    for heavy in ("kivy", "starlette", "uvicorn", "jinja2", "Pillow", "qrcode"):
        assert heavy not in core, f"{heavy} belongs in an extra, not in install_requires"
    assert {"kivy", "Pillow", "qrcode"} <= {r.split("[")[0].split(">")[0] for r in extras["kiosk"].split()}
    assert {"starlette", "uvicorn", "jinja2", "python-multipart"} <= {
        r.split(">")[0] for r in extras["controller"].split()}


def test_every_source_folder_is_a_package_that_setup_cfg_ships():
    # ``packages = find:`` skips a folder without __init__.py, so a wheel would silently lack it.
    missing = sorted(
        str(folder.relative_to(REPO))
        for package in product_packages()
        for folder in [REPO / package, *(REPO / package).rglob("*")]
        if folder.is_dir() and any(folder.glob("*.py")) and not (folder / "__init__.py").exists()
    )
    assert not missing, f"source folders without __init__.py (left out of an install): {missing}"
