"""One clock: every time shown (console pages, kioskctl, reports) is in the fleet's time zone.

The store keeps UTC epoch seconds; the tests run with the process in UTC, so a page that formats
with the server's own zone shows a different hour and fails.
"""

from __future__ import annotations

import sqlite3
from datetime import datetime
from zoneinfo import ZoneInfo

import pytest

from controller import ctl, fleet_clock
from controller.fleet_clock import FleetClock
from controller.server import Controller
from controller.store import DB_NAME
from controller.web import console_reads, reports
from controller.web.app import build_console, create_app
from foundation.errors import ConfigError
from foundation.settings import ControllerConfig, KioskConfig, from_mapping
from tests.console.conftest import PASSWORDS, ROLES, login, seed
from tests.console.test_requests import submit

SHANGHAI = ZoneInfo("Asia/Shanghai")
# 15:08 UTC is 23:08 in Shanghai: the moment from the issue, shown two ways.
MOMENT = datetime(2026, 3, 11, 23, 8, 5, tzinfo=SHANGHAI).timestamp()


def test_formats_in_the_zone_not_the_servers():
    assert FleetClock().show(MOMENT) == "2026-03-11 23:08:05"
    assert FleetClock("UTC").show(MOMENT) == "2026-03-11 15:08:05"
    assert FleetClock("Europe/Berlin").show(MOMENT, seconds=False) == "2026-03-11 16:08"
    assert FleetClock().show(None) == "-" and FleetClock().show(0, empty="never") == "never"
    assert FleetClock().day(datetime(2026, 3, 11, 17, 0, tzinfo=ZoneInfo("UTC")).timestamp()).isoformat() == "2026-03-12"


def test_unknown_zone_is_named_at_start():
    with pytest.raises(ConfigError) as exc:
        FleetClock("Mars/Olympus")
    assert exc.value.field == "time_zone"
    with pytest.raises(ConfigError) as exc:
        from_mapping(ControllerConfig, {"broker": "mqtt://h:1", "data_dir": "d", "time_zone": "Asia/Nowhere"}).validate()
    assert exc.value.field == "time_zone"
    assert from_mapping(ControllerConfig, {"broker": "mqtt://h:1", "data_dir": "d"}).time_zone == "Asia/Shanghai"
    with pytest.raises(ConfigError) as exc:  # the kiosk's setting, for its receipts
        from_mapping(KioskConfig, {"kiosk_id": "k1", "broker": "mqtt://h:1", "data_dir": "d", "time_zone": "x"}).validate()
    assert exc.value.field == "time_zone"


def _console(data, zone):
    seed(data, n=3, now=MOMENT)
    console = build_console(data, clock=lambda: MOMENT, time_zone=zone)
    for name, pw in PASSWORDS.items():
        console.accounts.add_user(name, ROLES[name], pw)
    return console


@pytest.mark.parametrize("zone", ["Asia/Shanghai", "America/New_York"])
def test_every_page_shows_one_moment_the_same(tmp_path, zone):
    """A kiosk last seen, a sign-in in the audit log and a resident's request, all at one moment:
    the fleet, kiosk, audit and requests pages show the same local time."""
    data = tmp_path / "controller-data"
    console = _console(data, zone)
    submit(data, "gd-0000", "environment", "normal", at=MOMENT)
    expect = FleetClock(zone).show(MOMENT)
    wrong = FleetClock("UTC").show(MOMENT)
    client = login(create_app(console, start_poller=False), "ada")
    try:
        for path in ("/fleet", "/kiosks/gd-0000", "/audit", "/requests?status=all"):
            html = client.get(path).text
            assert expect in html, path
            assert wrong not in html, path
    finally:
        client.__exit__(None, None, None)
        console.accounts.close()
        console_reads.close_all()


def _recorded(tmp_path, zone):
    """A store where a controller ran with ``time_zone = zone``."""
    data = tmp_path / "controller-data"
    seed(data, n=1, now=MOMENT)
    conn = sqlite3.connect(data / DB_NAME)
    fleet_clock.record(conn, zone)
    conn.commit()
    conn.close()
    return data


def test_the_console_takes_the_zone_the_controller_recorded(tmp_path):
    console = build_console(_recorded(tmp_path, "Europe/Lisbon"))
    try:
        assert console.clock_zone.name == "Europe/Lisbon"
    finally:
        console.accounts.close()


def test_kioskctl_shows_the_recorded_zone(tmp_path, capsys, monkeypatch):
    data = _recorded(tmp_path, "America/New_York")
    monkeypatch.setattr(ctl, "_zone", [])
    assert ctl.main(["--data-dir", str(data), "kiosks", "show", "gd-0000"]) == 0
    out = capsys.readouterr().out
    assert f"last seen {FleetClock('America/New_York').show(MOMENT)}" in out, out


def test_the_controller_records_its_zone_at_start(tmp_path):
    data = tmp_path / "controller-data"
    config = from_mapping(ControllerConfig, {"broker": "mqtt://127.0.0.1:1", "data_dir": str(data),
                                             "time_zone": "Asia/Tokyo"})
    controller = Controller(config)
    try:
        conn = sqlite3.connect(data / DB_NAME)
        assert fleet_clock.recorded(conn).name == "Asia/Tokyo"
        conn.close()
    finally:
        controller.store.close()


def test_report_days_are_days_in_the_fleets_zone():
    # 01:00 on 12 March in Shanghai is still 11 March in UTC: the report's "today" is the 12th.
    at = datetime(2026, 3, 12, 1, 0, tzinfo=SHANGHAI).timestamp()
    period = reports.parse_period({}, at, FleetClock())
    assert period.end.isoformat() == "2026-03-12"
    assert period.t0 == datetime(2026, 3, 6, tzinfo=SHANGHAI).timestamp()
    assert period.t1 == datetime(2026, 3, 13, tzinfo=SHANGHAI).timestamp()
