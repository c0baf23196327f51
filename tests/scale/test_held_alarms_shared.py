"""A held-condition alarm (``for``) with several controllers: raised once, by the lease holder.

Three real controller processes share one private PostgreSQL and the kiosk topics (shared
subscriptions); real kiosk agents publish their printer's status through the contract's builder.
Whichever instance takes a kiosk's device status records the held condition in the database; the
lease holder's once-a-second job raises the alarm once the hold has passed, exactly once per kiosk,
and a printer back in order clears it (issue 17: ``device_unreachable``).
"""

from __future__ import annotations

import time

from contract import device_status
from controller.alarms import RULES_FILE
from tests.scale.test_several_controllers import _agent, _instance, _key, _query
from tests.support.waiting import wait_until

HOLD = 2.0
UNPLUGGED = device_status.build("unknown", device_status.printer_detail(known=False, connected=False))
FINE = device_status.build("idle", device_status.printer_detail(known=True, paper="ok", cover_open=False))


def test_held_condition_raises_once_across_instances_and_clears(broker, postgres_url, tmp_path, procs):
    rules = tmp_path / "rules.toml"
    text = RULES_FILE.read_text(encoding="utf-8")
    assert "\nfor = 30\n" in text
    rules.write_text(text.replace("\nfor = 30\n", f"\nfor = {HOLD}\n"), encoding="utf-8")
    key, public = _key(tmp_path)
    ctls = [_instance(broker, tmp_path, n, postgres_url, key, procs, "--alarm-rules", str(rules)) for n in "abc"]
    assert ctls
    printers = {f"K-HOLD-{i}": FINE for i in range(6)}
    agents: list = []
    try:
        for kid in printers:
            _agent(broker, tmp_path, kid, public, agents, telemetry_interval=3600)
            agents[-1].device_status = lambda k=kid: {"printer": printers[k]}
        wait_until(lambda: len(_query(postgres_url, "SELECT 1 FROM devices WHERE name = 'printer'")) == len(printers),
                   15, "every printer status stored")
        unplugged_at = time.time()
        for kid in printers:
            printers[kid] = UNPLUGGED
        wait_until(lambda: len(_query(postgres_url, "SELECT 1 FROM alarms WHERE rule = 'device_unreachable' "
                                                    "AND cleared_at IS NULL")) == len(printers),
                   15, "device_unreachable raised for every kiosk")
        rows = _query(postgres_url, "SELECT kiosk_id, raised_at FROM alarms WHERE rule = 'device_unreachable'")
        assert sorted(k for k, _ in rows) == sorted(printers)  # once per kiosk, never by two instances
        assert all(raised - unplugged_at >= HOLD for _, raised in rows)
        assert _query(postgres_url, "SELECT COUNT(*) FROM held_alarms")[0][0] == 0  # the raise ends the hold
        for kid in printers:
            printers[kid] = FINE
        wait_until(lambda: not _query(postgres_url, "SELECT 1 FROM alarms WHERE cleared_at IS NULL "
                                                    "AND rule = 'device_unreachable'"), 15, "every alarm cleared")
        assert len(_query(postgres_url, "SELECT 1 FROM alarms WHERE rule = 'device_unreachable'")) == len(printers)
    finally:
        for a in agents:
            a.stop()
