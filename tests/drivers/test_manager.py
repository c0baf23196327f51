"""Device manager: UnifiedPOS life cycle, status detail and hints, reconnect, persisted statistics."""

from __future__ import annotations

import json

import pytest

from device_drivers.manager import DeviceConfig, DeviceManager
from foundation.backoff import Backoff
from foundation.errors import ConfigError, DeviceError
from tests.support.waiting import wait_until


@pytest.fixture
def kiosk(sim, tmp_path):
    sims = {}
    configs = []
    for name, kind, dev, baud in [("printer", "printer", "printer", 115200), ("id_reader", "id_reader", "id-reader", 115200),
                                  ("card_reader", "card_reader", "card-reader", 115200),
                                  ("scanner", "scanner", "scanner", 9600)]:
        proc, link = sim(dev, out=tmp_path / "receipts" if dev == "printer" else None, baud=baud)
        sims[name] = proc
        configs.append(DeviceConfig(name, kind, str(link), baud))
    mgr = DeviceManager(configs, data_dir=tmp_path / "data")
    yield mgr, sims, tmp_path
    mgr.stop()


def test_life_cycle_operations_and_status(kiosk):
    mgr, sims, tmp = kiosk
    st = mgr.start()
    assert {n: s["state"] for n, s in st.items()} == dict.fromkeys(mgr.devices, "idle")
    p = st["printer"]
    assert p["detail"] == {"connection": "connected", "paper": "full", "cover": "closed", "cutter": "ok"}
    assert p["required_action"] is None and p["fault"] == ""
    job = mgr["printer"].print_receipt([{"text": "居住证明", "align": "center", "bold": True, "size": [2, 2]},
                                        {"text": "测试居民一"}, {"qr": "https://example.invalid/q"},
                                        {"barcode": "A001"}])
    assert job["status"] == "completed"
    sims["id_reader"].send({"cmd": "place_card", "profile": "hmt-1"})
    ident = mgr["id_reader"].read_card(timeout=2)
    assert ident.card_type == "hk_macao_taiwan_permit"
    assert mgr["id_reader"].status()["detail"]["media"] == "present"
    mgr["id_reader"].wipe()
    assert ident.wiped
    sims["card_reader"].send({"cmd": "place_card", "kind": "uid", "uid": "01020304"})
    assert mgr["card_reader"].read_uid(timeout=1) == "01020304"
    got = []
    mgr["scanner"].on_scan = got.append
    sims["scanner"].send({"cmd": "scan", "data": "Q-42"})
    assert wait_until(lambda: got, 15) and got[0].data == "Q-42"
    health = mgr["printer"].check_health("external")
    assert health["ok"] and health["test_print"]["status"] == "completed"
    mgr["printer"].disable()
    with pytest.raises(DeviceError, match="not enabled"):
        mgr["printer"].print_receipt([{"text": "x"}])
    mgr.stop()
    assert mgr["printer"].status()["state"] == "closed"
    saved = json.loads((tmp / "data" / "stats-printer.json").read_text())
    assert saved["cuts"] == 2 and saved["lines_printed"] >= 4 and saved["hours_powered"] > 0
    assert json.loads((tmp / "data" / "stats-card_reader.json").read_text())["cards_read"] == 1


def test_printer_faults_give_detail_and_required_action(kiosk):
    mgr, sims, _ = kiosk
    mgr.start()
    sims["printer"].send({"cmd": "paper", "state": "out"})
    job = mgr["printer"].print_receipt([{"text": "x"}])
    assert job["refused"] and job["reason"] == "paper_out"
    mgr["printer"].check_health()
    st = mgr["printer"].status()
    assert st["state"] == "error" and st["detail"]["paper"] == "out"
    assert st["fault"] == "paper_out" and st["required_action"] == "load_paper"
    sims["printer"].send({"cmd": "paper", "state": "ok"})
    sims["printer"].send({"cmd": "cover", "open": True})
    st = mgr["printer"].status()
    assert st["detail"]["cover"] == "open" and (st["fault"], st["required_action"]) == ("cover_open", "close_cover")
    sims["printer"].send({"cmd": "cover", "open": False})
    assert mgr["printer"].status()["state"] == "idle"


def test_automatic_status_back_updates_an_idle_printer_without_polling(kiosk):
    mgr, sims, _ = kiosk
    mgr.start()
    sims["printer"].send({"cmd": "cover", "open": True})
    assert wait_until(lambda: mgr["printer"].detail().cover == "open", 15)
    assert mgr["printer"].state == "error"
    sims["printer"].send({"cmd": "cover", "open": False})
    assert wait_until(lambda: mgr["printer"].state == "idle", 15)


def test_unplug_shows_error_then_reconnects_and_resyncs(kiosk):
    mgr, sims, _ = kiosk
    mgr.start()
    sims["printer"].send({"cmd": "unplug"})
    assert wait_until(lambda: mgr["printer"].status()["state"] == "error", 15)
    st = mgr["printer"].status()
    assert st["detail"]["connection"] == "disconnected" and st["required_action"] == "check_connection"
    sims["printer"].send({"cmd": "replug"})
    assert wait_until(lambda: mgr["printer"].status()["state"] == "idle", 15)
    assert mgr["printer"].print_receipt([{"text": "back"}])["status"] == "completed"
    assert mgr["printer"].status()["stats"]["reconnects"] == 1


def test_missing_port_at_start_is_claimed_later(sim, tmp_path):
    link = tmp_path / "late.tty"
    mgr = DeviceManager([DeviceConfig("scanner", "scanner", str(link), 9600)], data_dir=tmp_path / "d",
                        backoff=Backoff(base=0.05, cap=0.2))
    st = mgr.start()["scanner"]
    assert st["state"] == "error" and st["detail"]["connection"] == "disconnected"
    from tests.support.processes import start_sim

    p = start_sim("scanner", link, baud=9600)
    try:
        assert wait_until(lambda: mgr["scanner"].status()["state"] == "idle", 15)
        assert mgr["scanner"].enabled
    finally:
        mgr.stop()
        p.stop()


def test_bad_configuration_is_refused_with_the_field():
    with pytest.raises(ConfigError, match="devices.x.kind"):
        DeviceConfig("x", "fax", "loop://")
    with pytest.raises(ConfigError, match="port"):
        DeviceConfig("x", "printer", "")
