"""A kiosk's device statuses and config reports handled out of order (several controller instances,
docs/scale-out.md): the controller keeps the newer by the kiosk's ``ts`` and boot, counts the older
(``device_superseded``, ``reported_superseded``), and judges alarms only on the state it keeps. The
bodies come from the contract's builders the agent uses (``device_status.body``,
``payloads.config_reported``)."""

from __future__ import annotations

import pytest

from contract import device_status, payloads, topics
from controller import alarms, handlers, report_order
from foundation.errors import RemoteProtocolError
from foundation.settings import KioskConfig, from_mapping
from kiosk_ui.agent.agent import KioskAgent

PAPER_OUT = device_status.build("idle", device_status.printer_detail(known=True, paper="out"))
PAPER_OK = device_status.build("idle", device_status.printer_detail(known=True, paper="ok"))


def _state():
    s = handlers.FleetState(telemetry_period=10, stale_after_periods=3, rules=alarms.load_rules())
    s, _ = handlers.handle(s, _msg("status", payloads.birth("K1", mode="normal", boot_id="b1", site="", versions={},
                                                            devices=["printer"], ts=1.0)), 1.0)
    return s


def _msg(kind, body):
    return topics.parse(f"kiosk/v1/K1/{kind}", topics.encode(body))


def _device(st, ts=None, boot_id="b1"):
    return _msg("devices/printer", device_status.body("K1", st, ts=ts, boot_id=boot_id if ts is not None else ""))


def _report(version, ts=None, boot_id="b1"):
    return _msg("config/reported", payloads.config_reported("K1", version=version, status="applied", config={},
                                                            ts=ts, boot_id=boot_id if ts is not None else ""))


def _printer_alarm(s):
    return [k for k in s.open_alarms if k[0] == "K1" and k[2] == "printer"]


def test_older_device_state_handled_last_is_ignored_and_its_alarm_not_raised():
    s = _state()
    s, _ = handlers.handle(s, _device(PAPER_OK, ts=20.0), 2.0)  # paper back, handled first
    s.effects.clear()
    s, out = handlers.handle(s, _device(PAPER_OUT, ts=10.0), 3.0)  # paper out, published before
    assert out == [] and s.effects == [] and not _printer_alarm(s)
    assert s.kiosks["K1"]["devices"]["printer"]["fault"] == "" and s.kiosks["K1"]["devices"]["printer"]["ts"] == 20.0
    assert s.counts == {"device_superseded": 1}


def test_newer_device_state_is_applied_and_judged():
    s = _state()
    s, _ = handlers.handle(s, _device(PAPER_OK, ts=10.0), 2.0)
    s, _ = handlers.handle(s, _device(PAPER_OUT, ts=20.0), 3.0)
    assert s.kiosks["K1"]["devices"]["printer"]["fault"] == "paper_out" and _printer_alarm(s)
    s, _ = handlers.handle(s, _device(PAPER_OK, ts=30.0), 4.0)
    assert s.kiosks["K1"]["devices"]["printer"]["fault"] == "" and not _printer_alarm(s)
    assert s.counts == {}


def test_bodies_without_ts_behave_as_before():
    s = _state()
    s, _ = handlers.handle(s, _device(PAPER_OK, ts=20.0), 2.0)
    s, _ = handlers.handle(s, _device(PAPER_OUT), 3.0)  # an older kiosk: the last handled is kept
    assert s.kiosks["K1"]["devices"]["printer"] == PAPER_OUT.to_dict() and _printer_alarm(s)
    s, _ = handlers.handle(s, _device(PAPER_OK, ts=5.0), 4.0)  # the held one has no ts: applied
    assert s.kiosks["K1"]["devices"]["printer"]["fault"] == "" and not _printer_alarm(s)
    assert "ts" not in device_status.body("K1", PAPER_OK) and s.counts == {}


def test_the_current_boots_report_beats_an_earlier_boots_whatever_its_clock():
    s = _state()
    s, _ = handlers.handle(s, _device(PAPER_OUT, ts=1_000.0, boot_id="b0"), 2.0)  # before the reboot
    # The kiosk's clock stepped back and its journal was lost: b1 (its birth applied) reports 500.
    s, _ = handlers.handle(s, _device(PAPER_OK, ts=500.0), 3.0)
    assert s.kiosks["K1"]["devices"]["printer"]["fault"] == "" and s.counts == {}
    # Another boot's report handled late: ts decides (its birth might not be applied yet).
    s, _ = handlers.handle(s, _device(PAPER_OUT, ts=400.0, boot_id="b0"), 4.0)
    assert s.kiosks["K1"]["devices"]["printer"]["boot_id"] == "b1" and s.counts == {"device_superseded": 1}


def test_config_report_with_an_older_version_handled_last_is_ignored():
    s = _state()
    s, _ = handlers.handle(s, _report(13, ts=20.0), 2.0)
    s, _ = handlers.handle(s, _report(12, ts=10.0), 3.0)
    assert s.kiosks["K1"]["reported"]["version"] == 13 and s.counts == {"reported_superseded": 1}


def test_config_report_of_a_lower_version_but_later_is_applied():
    """A kiosk moved to a site whose layers have lower versions reports a lower version later: the
    version alone would keep the old report and show the kiosk out of sync for good."""
    s = _state()
    s, _ = handlers.handle(s, _report(13, ts=20.0), 2.0)
    s, _ = handlers.handle(s, _report(7, ts=30.0), 3.0)
    assert s.kiosks["K1"]["reported"]["version"] == 7 and s.counts == {}
    s, _ = handlers.handle(s, _report(5), 4.0)  # an older kiosk: as before
    assert s.kiosks["K1"]["reported"]["version"] == 5


def test_order_fields_are_checked():
    for bad in ({"ts": "1"}, {"ts": True}, {"ts": float("nan")}, {"boot_id": 7}, {"boot_id": "x" * 65}):
        with pytest.raises(RemoteProtocolError, match="ts|boot_id"):
            device_status.parse({"state": "idle", "detail": {}, **bad})
        with pytest.raises(RemoteProtocolError, match="ts|boot_id"):
            payloads.parse_config_reported({"status": "applied", **bad})
    st = device_status.parse(device_status.body("K1", PAPER_OK, ts=1.5, boot_id="b"))
    assert (st.ts, st.boot_id) == (1.5, "b") and st.to_dict() == PAPER_OK.to_dict()


def test_report_order_rules():
    assert not report_order.superseded(None, 1.0, "b", "b")
    assert not report_order.superseded({"ts": 5.0}, None, "", "b")
    assert report_order.superseded({"ts": 5.0, "boot_id": "b"}, 4.0, "b", "b")
    assert not report_order.superseded({"ts": 5.0, "boot_id": "b"}, 5.0, "b", "b")  # the same, sent again
    # A boot whose birth is not applied yet may be the newer one: ts decides.
    assert not report_order.superseded({"ts": 5.0, "boot_id": "b"}, 6.0, "c", "b")
    assert report_order.superseded({"ts": 5.0, "boot_id": "b"}, 4.0, "c", "b")


def test_the_real_agents_reports_order_even_when_its_clock_steps_back(broker, raw, tmp_path):
    """The real agent on the real broker publishes two device states and two config reports while
    its clock steps back; handed to the controller's handler in the reverse order, the older of
    each is ignored."""
    clock = [2_000_000_000.0]
    cfg = from_mapping(KioskConfig, {"kiosk_id": "K1", "broker": broker.url, "keepalive": 2,
                                     "data_dir": str(tmp_path / "kiosk")})
    watcher = raw("watcher")
    watcher.subscribe("kiosk/v1/K1/#")
    agent = KioskAgent(cfg, clock=lambda: clock[0])
    printer = {"printer": PAPER_OUT}
    agent.device_status = lambda: dict(printer)
    agent.start(wait=10)
    try:
        birth = watcher.wait_json(lambda t, b: t.endswith("/status") and b.get("state") == "online", 10)
        devices, reports = [], []
        for st, version in ((PAPER_OUT, 13), (PAPER_OK, 12)):
            printer["printer"] = st
            agent.poll_devices()
            # No controller key pinned: the agent rejects the config, and reports that (with the version).
            agent.apply_desired(topics.encode_to_kiosk(payloads.config_desired(version, {})))
            devices.append(watcher.wait_json(lambda t, b, f=st.fault: t.endswith("devices/printer")
                                             and b.get("fault") == f, 10))
            reports.append(watcher.wait_json(lambda t, b, v=version: t.endswith("config/reported")
                                             and b.get("version") == v, 10))
            clock[0] -= 3600.0  # NTP steps the clock back an hour
    finally:
        agent.stop()
    assert devices[0]["boot_id"] == devices[1]["boot_id"] == agent.boot_id and devices[1]["ts"] > devices[0]["ts"]
    assert reports[1]["ts"] > reports[0]["ts"]
    s = handlers.FleetState(telemetry_period=10, stale_after_periods=3, rules=alarms.load_rules())
    s, _ = handlers.handle(s, _msg("status", birth), 1.0)
    for body in (devices[1], devices[0]):
        s, _ = handlers.handle(s, _msg("devices/printer", body), 2.0)
    for body in (reports[1], reports[0]):
        s, _ = handlers.handle(s, _msg("config/reported", body), 3.0)
    assert s.kiosks["K1"]["devices"]["printer"]["fault"] == "" and not _printer_alarm(s)
    assert s.kiosks["K1"]["reported"]["version"] == 12
    assert s.counts == {"device_superseded": 1, "reported_superseded": 1}
