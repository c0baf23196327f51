"""The kiosk agent's production update steps (kiosk_ui/agent/updates.py ``CliSteps``): the exact
commands it runs (``sudo -n kiosk-updater ...``; the switch inside ``systemd-run``), proven by
recording shims on PATH that stand in for sudo, systemd-run and kiosk-updater and run each other
as the real ones would; a failing step is reported with the updater's reason, never as success."""

from __future__ import annotations

import json
import sys

import pytest

from foundation.errors import KioskError
from kiosk_ui.agent.updates import CliSteps

SHIM = """#!{python}
import json, os, sys
name = os.path.basename(sys.argv[0])
with open(os.environ["SHIM_LOG"], "a") as log:
    log.write(json.dumps([name, *sys.argv[1:]]) + "\\n")
args = sys.argv[1:]
if name == "sudo":
    if args[:1] != ["-n"]:
        sys.exit("sudo: a password is required")  # the agent must never wait for a password
    os.execvp(args[1], args[1:])
if name == "systemd-run":
    while args and args[0].startswith("--"):
        args.pop(0)
    os.execvp(args[0], args)
# kiosk-updater: answers as the real one does, or fails the step named in SHIM_FAIL
step = args[0]
if os.environ.get("SHIM_FAIL") == step:
    print(f"kiosk-updater {{step}}: disk_full: the disk filled up while downloading wheels/x.whl", file=sys.stderr)
    sys.exit(1)
print("progress line")
print(json.dumps({{"install": {{"installed": "2.0.0"}}, "switch": {{"status": "committed", "version": args[-1]}},
                  "status": {{"current": "1.0.0", "committed": "1.0.0"}},
                  "abort": {{"status": "rolled_back", "reason": "aborted by the roll-out"}}}}[step]))
"""


@pytest.fixture
def shims(tmp_path, monkeypatch):
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    for name in ("sudo", "systemd-run", "kiosk-updater"):
        (bin_dir / name).write_text(SHIM.format(python=sys.executable))
        (bin_dir / name).chmod(0o755)
    log = tmp_path / "calls.jsonl"
    monkeypatch.setenv("PATH", f"{bin_dir}:/usr/bin:/bin")
    monkeypatch.setenv("SHIM_LOG", str(log))
    monkeypatch.delenv("SHIM_FAIL", raising=False)

    def calls() -> list[list[str]]:
        out = [json.loads(line) for line in log.read_text().splitlines()] if log.exists() else []
        log.unlink(missing_ok=True)
        return out
    return calls


TLS = ("--ca", "/etc/kiosk/ca.pem", "--cert", "/etc/kiosk/kiosk.pem", "--key", "/etc/kiosk/kiosk.key")


def test_each_step_runs_the_exact_commands(shims):
    steps = CliSteps(tls=TLS)  # as kiosk_ui/app_main.py builds it on a provisioned kiosk
    step = steps.install("https://ctl.example/releases/kiosk/2.0.0", "ab" * 32)
    assert (step.status, step.version) == ("installed", "2.0.0")
    assert shims() == [
        ["sudo", "-n", "kiosk-updater", "install", "https://ctl.example/releases/kiosk/2.0.0",
         "--manifest-sha256", "ab" * 32, *TLS],
        ["kiosk-updater", "install", "https://ctl.example/releases/kiosk/2.0.0", "--manifest-sha256", "ab" * 32, *TLS]]
    step = steps.switch("2.0.0")
    assert (step.status, step.version) == ("committed", "2.0.0")
    assert shims() == [
        ["systemd-run", "--wait", "--pipe", "--collect", "--unit=kiosk-update-switch", "sudo", "-n", "kiosk-updater",
         "switch", "2.0.0"],
        ["sudo", "-n", "kiosk-updater", "switch", "2.0.0"],
        ["kiosk-updater", "switch", "2.0.0"]]
    assert steps.status() == {"current": "1.0.0", "committed": "1.0.0"}
    assert shims()[0] == ["sudo", "-n", "kiosk-updater", "status", "--json"]
    step = steps.abort("2.0.0")
    assert (step.status, step.reason) == ("rolled_back", "aborted by the roll-out")
    assert shims()[0] == ["sudo", "-n", "kiosk-updater", "abort", "2.0.0"]


@pytest.mark.parametrize("step", ["install", "switch", "status", "abort"])
def test_a_failing_step_is_reported_with_the_updaters_reason(shims, monkeypatch, step):
    monkeypatch.setenv("SHIM_FAIL", step)
    steps = CliSteps()
    call = {"install": lambda: steps.install("https://ctl.example/releases/kiosk/2.0.0", "ab" * 32),
            "switch": lambda: steps.switch("2.0.0"), "status": steps.status, "abort": lambda: steps.abort("2.0.0")}
    with pytest.raises(KioskError) as exc:
        call[step]()
    assert "disk_full: the disk filled up while downloading wheels/x.whl" in str(exc.value)
    assert shims()[-1][:2] == ["kiosk-updater", step]


def test_sudo_that_would_ask_for_a_password_fails_the_step(shims):
    steps = CliSteps(updater=("sudo", "kiosk-updater"))  # without -n: the shim refuses, as sudo would
    with pytest.raises(KioskError, match="a password is required"):
        steps.install("https://ctl.example/releases/kiosk/2.0.0", "ab" * 32)
