"""The composition root (kiosk_ui/compose.py) with real parts: a printer simulator on a
pseudo-terminal, the real Devices, runtime, agent and Kivy app (not run; its clock is ticked)."""

from __future__ import annotations

import pytest

from foundation.errors import ConfigError
from foundation.settings import KioskConfig, from_mapping
from kiosk_ui.compose import build_app_kiosk, build_headless_kiosk


def kiosk_config(tmp_path, **devices) -> KioskConfig:
    return from_mapping(KioskConfig, {"kiosk_id": "K-COMPOSE", "broker": "mqtt://127.0.0.1:1",
                                      "data_dir": str(tmp_path / "kiosk"), "devices": devices})


def build(tmp_path, config: KioskConfig):
    return build_app_kiosk(config=config, kiosk_id=config.kiosk_id, data_dir=config.data_dir, simulated=False,
                           app_options={"language": "en", "ref_key": b"k" * 32, "voice": False},
                           join_fleet=True)


def test_the_app_drives_the_printer_with_the_configured_profile(tmp_path, sim):
    _, link = sim("printer")
    kiosk, app = build(tmp_path, kiosk_config(tmp_path, printer=str(link), printer_profile="generic-58"))
    try:
        app.devices.start()
        assert app.devices.manager["printer"].driver.profile.name == "generic-58"
    finally:
        kiosk.close()


def test_the_fleet_runtime_reports_the_apps_devices_and_hands_it_the_mode(tmp_path, sim):
    from kivy.clock import Clock

    _, link = sim("printer")
    kiosk, app = build(tmp_path, kiosk_config(tmp_path, printer=str(link)))
    try:
        assert kiosk.runtime is not None
        status = kiosk.runtime.device_status()  # the app's device manager, through the runtime
        assert status["printer"]["state"] in ("idle", "error") and "stats" not in status["printer"]
        assert kiosk.runtime.execute("collect_diagnostics", {})[0]["devices"]["printer"]["state"] in ("idle", "error")
        app.build()  # screens and window, as App.run() does first
        kiosk.runtime.execute("set_mode", {"mode": "out_of_service"})
        Clock.tick()  # the app applies fleet changes on its UI thread
        assert app.fleet_mode == "out_of_service"
    finally:
        kiosk.close()


def test_an_unknown_printer_profile_stops_the_start_naming_the_field(tmp_path):
    for make in (lambda c: build(tmp_path, c), build_headless_kiosk):
        with pytest.raises(ConfigError, match="generic-80mm") as err:
            make(kiosk_config(tmp_path, printer="loop://", printer_profile="generic-80mm"))
        assert err.value.field == "devices.printer_profile"
