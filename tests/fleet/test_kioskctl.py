"""kioskctl as an operator's scripts use it: acknowledging with a note, JSON output that parses,
``kioskctl events | head`` without a traceback, and ``kiosks show`` without Python's None or dict
text. The alarm comes from a real simulated kiosk whose printer runs out of paper. Every test runs
with the controller's fleet store in SQLite and in PostgreSQL (kioskctl given ``--database``)."""

from __future__ import annotations

import json
import os
import subprocess

import pytest

from controller import ctl as ctlmod
from foundation.settings import KioskConfig, from_mapping
from hardware_sim.control_socket import send
from kiosk_ui.compose import build_headless_kiosk
from tests.conftest import BACKENDS
from tests.fleet.conftest import wait_until
from tests.support.processes import REPO

KIOSKCTL = str(REPO / ".venv" / "bin" / "kioskctl")


def _where(ctl) -> list[str]:
    """kioskctl's flags for the controller's fleet database."""
    database = ["--database", ctl.config.database] if ctl.config.database else []
    return ["--data-dir", str(ctl.config.data_dir), *database]


def _ctl(ctl, *argv) -> subprocess.CompletedProcess:
    return subprocess.run([KIOSKCTL, *_where(ctl), *argv], capture_output=True, text=True, timeout=30,
                          env={**os.environ, "KIOSKCTL_USER": "fay"})


@pytest.fixture(params=BACKENDS)
def paper_out(make_controller, broker, tmp_path, request):
    """A controller (fleet store on SQLite, then PostgreSQL) and a simulated kiosk with an active
    paper_out alarm: (controller, alarm id)."""
    database = request.getfixturevalue("postgres_url") if request.param == "postgresql" else ""
    ctl = make_controller(database=database)
    cfg = from_mapping(KioskConfig, {"kiosk_id": "K-NOTE", "broker": broker.url, "simulated": True,
                                     "data_dir": str(tmp_path / "kiosk"), "controller_public_key": ctl.public_key(),
                                     "telemetry_interval": 1, "keepalive": 2})
    kiosk, runtime = build_headless_kiosk(cfg, reboot_command=("true",))
    runtime.start()
    try:
        wait_until(lambda: (ctl.kiosk("K-NOTE") or {}).get("state") == "online", 15, "kiosk online")
        assert send(tmp_path / "kiosk" / "dev" / "printer.ctl", {"cmd": "paper", "state": "out"})["ok"]
        wait_until(lambda: any(a["rule"] == "paper_out" for a in ctl.alarms(kiosk_id="K-NOTE")["items"]), 20,
                   "paper_out alarm")
        yield ctl, next(a["id"] for a in ctl.alarms(kiosk_id="K-NOTE")["items"] if a["rule"] == "paper_out")
    finally:
        kiosk.close()


def test_ack_with_note_prints_json_and_lands_in_the_audit(paper_out):
    ctl, alarm_id = paper_out
    data = ctl
    r = _ctl(data, "--json", "alarms", "ack", str(alarm_id), "--note", "paper loaded, roll 2 of 5")
    assert r.returncode == 0, r.stderr
    assert json.loads(r.stdout) == {"alarm_id": alarm_id, "acked": True, "note": "paper loaded, roll 2 of 5"}
    again = _ctl(data, "alarms", "ack", str(alarm_id), "--json")
    assert json.loads(again.stdout) == {"alarm_id": alarm_id, "acked": False, "note": ""}
    human = _ctl(data, "alarms", "ack", str(alarm_id))
    assert human.stdout.strip() == f"alarm {alarm_id} was already acknowledged"
    audit = json.loads(_ctl(data, "audit", "--json").stdout)["items"]
    acks = [(a["user"], a["detail"], a["result"]) for a in audit if a["action"] == "alarm.ack"]
    assert ("fay", {"note": "paper loaded, roll 2 of 5"}, "ok") in acks

    missing = _ctl(data, "--json", "alarms", "ack", "999999")
    assert missing.returncode == 1 and "no alarm 999999" in json.loads(missing.stdout)["error"]
    long = _ctl(data, "alarms", "ack", str(alarm_id), "--note", "x" * 501)
    assert long.returncode == 2 and "--note" in long.stderr and "500" in long.stderr


def test_kiosks_show_prints_no_python_values(paper_out):
    ctl, _ = paper_out
    wait_until(lambda: (ctl.kiosk("K-NOTE") or {}).get("telemetry"), 10, "telemetry")
    r = _ctl(ctl, "kiosks", "show", "K-NOTE")
    assert r.returncode == 0, r.stderr
    assert "None" not in r.stdout and "{" not in r.stdout and "vNone" not in r.stdout, r.stdout
    assert "device printer: error paper_out UNAVAILABLE load_paper" in r.stdout
    assert "nothing reported yet" in r.stdout or " reported v" in r.stdout


def test_status_from_the_controllers_config_file(paper_out, tmp_path):
    """``--config``: the controller's own TOML names the data folder and the fleet database."""
    ctl, _ = paper_out
    config = tmp_path / "controller.toml"
    config.write_text(f'broker = "{ctl.config.broker}"\ndata_dir = "{ctl.config.data_dir}"\n'
                      f'database = "{ctl.config.database}"\n', encoding="utf-8")
    r = subprocess.run([KIOSKCTL, "--config", str(config), "status", "--json"], capture_output=True, text=True,
                       timeout=30)
    assert r.returncode == 0, r.stderr
    assert [(k["kiosk_id"], k["state"]) for k in json.loads(r.stdout)] == [("K-NOTE", "online")]


def test_kioskctl_into_a_closed_pipe_exits_quietly(paper_out):
    ctl, _ = paper_out
    read, write = os.pipe()
    os.close(read)  # what `| head` does once it has its lines
    try:
        r = subprocess.run([KIOSKCTL, *_where(ctl), "events"], stdout=write,
                           stderr=subprocess.PIPE, text=True, timeout=30)
    finally:
        os.close(write)
    assert r.returncode == 0 and r.stderr == "", r.stderr


def test_values_render_for_operators():
    assert ctlmod._text(None) == "-" and ctlmod._text("None") == "-" and ctlmod._text({}) == "-"
    # The Kivy kiosk's device detail is a mapping (its device manager's shape).
    assert ctlmod._text({"connection": "connected", "paper": "full"}) == "connection connected, paper full"
    assert ctlmod._text(41.25, " °C") == "41.2 °C"
