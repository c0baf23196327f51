"""Liveness through real processes: online, offline by will, offline by clean shutdown, stale (kioskctl)."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys

from tests.fleet.conftest import wait_until
from tests.support.processes import REPO, Proc

BIN = REPO / ".venv" / "bin"


def _states(data_dir) -> dict:
    r = subprocess.run([str(BIN / "kioskctl"), "--data-dir", str(data_dir), "status", "--json"],
                       capture_output=True, text=True, timeout=30)
    if r.returncode != 0:
        return {}
    return {k["kiosk_id"]: (k["state"], k["reason"]) for k in json.loads(r.stdout)}


def _agent(broker, tmp_path, kiosk_id: str, keepalive: int) -> Proc:
    return Proc([str(BIN / "kiosk-agent"), "--kiosk-id", kiosk_id, "--broker", broker.url, "--data-dir",
                 str(tmp_path / kiosk_id), "--telemetry-interval", "1", "--keepalive", str(keepalive)])


def test_online_offline_by_will_and_shutdown_and_stale(broker, tmp_path, procs):
    data = tmp_path / "ctl"
    ctl = Proc([sys.executable, "-m", "tests.fleet.run_controller", "--broker", broker.url, "--data-dir", str(data),
                "--telemetry-period", "1"])
    procs.append(ctl)
    ctl.wait_for("controller online", 30)
    killed, stopped, frozen = (_agent(broker, tmp_path, k, ka) for k, ka in (("K-KILL", 1), ("K-STOP", 2),
                                                                                ("K-FROZEN", 30)))
    procs.extend([killed, stopped, frozen])
    for p in (killed, stopped, frozen):
        p.wait_for(lambda s: " online " in s, 30)
    wait_until(lambda: all(v[0] == "online" for v in _states(data).values()) and len(_states(data)) == 3, 15,
               "three kiosks online")

    stopped.stop()
    wait_until(lambda: _states(data)["K-STOP"] == ("offline", "shutdown"), 10, "offline by shutdown")

    os.killpg(killed.proc.pid, signal.SIGKILL)
    wait_until(lambda: _states(data)["K-KILL"] == ("offline", "lwt"), 15, "offline by will")

    # Frozen: the TCP connection stays up (keepalive 30 s) but telemetry stops: stale after 3 periods.
    frozen.signal(signal.SIGSTOP)
    try:
        wait_until(lambda: _states(data)["K-FROZEN"][0] == "stale", 15, "stale")
    finally:
        frozen.signal(signal.SIGCONT)
    wait_until(lambda: _states(data)["K-FROZEN"][0] == "online", 15, "online again after telemetry")

    r = subprocess.run([str(BIN / "kioskctl"), "--data-dir", str(data), "alarms", "list", "--json"],
                       capture_output=True, text=True, timeout=30)
    active = {(a["kiosk_id"], a["rule"]) for a in json.loads(r.stdout)["items"]}
    assert ("K-KILL", "kiosk_offline") in active and ("K-STOP", "kiosk_offline") in active
    assert ("K-FROZEN", "kiosk_offline") not in active  # raised when stale, cleared when back
    r = subprocess.run([str(BIN / "kioskctl"), "--data-dir", str(data), "alarms", "list", "--history", "--json",
                        "--kiosk", "K-FROZEN"], capture_output=True, text=True, timeout=30)
    history = json.loads(r.stdout)["items"]
    assert history and history[0]["rule"] == "kiosk_offline" and history[0]["cleared_at"] is not None


def test_restart_app_command_exits_the_agent_for_systemd(broker, tmp_path, procs, make_controller):
    ctl = make_controller()
    agent = Proc([str(BIN / "kiosk-agent"), "--kiosk-id", "K-RST", "--broker", broker.url, "--data-dir",
                  str(tmp_path / "K-RST"), "--controller-public-key", ctl.public_key()])
    procs.append(agent)
    agent.wait_for(lambda s: "K-RST online" in s, 30)
    wait_until(lambda: (ctl.kiosk("K-RST") or {}).get("state") == "online", 10, "online")
    rec = ctl.wait_command(ctl.send_command("K-RST", "restart_app", {}, "ops"), 10)
    assert rec["status"] == "succeeded"  # the result left the kiosk before it restarted
    assert agent.wait_exit(15) == 75  # and its last lines read
    assert any("restarting: restart_app command" in s for s in agent.stdout_lines)
    wait_until(lambda: ctl.kiosk("K-RST")["state"] == "offline" and ctl.kiosk("K-RST")["reason"] == "shutdown", 10,
               "clean shutdown status")


def _alarms(data_dir, kiosk_id: str) -> list[dict]:
    r = subprocess.run([str(BIN / "kioskctl"), "--data-dir", str(data_dir), "alarms", "list", "--history", "--json",
                        "--kiosk", kiosk_id], capture_output=True, text=True, timeout=30)
    return [a for a in json.loads(r.stdout)["items"] if a["rule"] == "kiosk_offline"]


def test_a_controller_restart_raises_no_offline_alarm_for_a_kiosk_that_stayed_connected(broker, tmp_path, procs,
                                                                                          raw):
    # Soak (issue 17): after every controller restart each kiosk had a kiosk_offline alarm raised and
    # cleared within 0.2 s: the first liveness sweep ran on the records from before the downtime,
    # before the controller had heard the retained births. A kiosk that went away meanwhile must
    # still be offline (by its will, waiting at the broker) at once.
    data = tmp_path / "ctl"
    argv = [sys.executable, "-m", "tests.fleet.run_controller", "--broker", broker.url, "--data-dir", str(data),
            "--telemetry-period", "1"]  # stale after 3 s of silence
    ctl = Proc(argv)
    procs.append(ctl)
    ctl.wait_for("controller online", 30)
    stay, gone = _agent(broker, tmp_path, "K-STAY", 2), _agent(broker, tmp_path, "K-GONE", 2)
    procs.extend([stay, gone])
    wait_until(lambda: _states(data) == {"K-STAY": ("online", ""), "K-GONE": ("online", "")}, 30, "both online",
               interval=0.3)

    watch = raw("watch")
    watch.subscribe("kiosk/v1/K-STAY/telemetry")
    os.killpg(ctl.proc.pid, signal.SIGKILL)  # no clean stop: the records still say online
    ctl.proc.wait(10)
    os.killpg(gone.proc.pid, signal.SIGKILL)  # goes away while the controller is down
    # Down for longer than the stale limit: five telemetry periods of the kiosk that stayed.
    wait_until(lambda: len(watch.messages) >= 5, 20, "five telemetry periods of downtime")

    ctl = Proc(argv)
    procs.append(ctl)
    ctl.wait_for("controller online", 30)
    wait_until(lambda: _states(data).get("K-GONE") == ("offline", "lwt"), 10, "the kiosk that went away offline",
               interval=0.2)
    # Past the first sweeps of the restarted controller: a few more telemetry periods.
    seen = len(watch.messages)
    wait_until(lambda: len(watch.messages) >= seen + 3, 15, "three telemetry periods after the restart")
    assert _states(data)["K-STAY"] == ("online", "")
    assert _alarms(data, "K-STAY") == []
    assert [a["cleared_at"] for a in _alarms(data, "K-GONE")] == [None]
