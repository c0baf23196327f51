"""End to end: the real kiosk app (Kivy under Xvfb, touch simulation) walks every reference service
against the device simulators, a real Mosquitto and the real controller; then faults, idle timeout,
maintenance, out-of-service, a catalogue change and a controller outage. Privacy is checked on
every MQTT payload, log line and controller database row."""

from __future__ import annotations

import json
import sqlite3

from contract.catalogue import load_default_document
from hardware_sim.identities import PROFILES
from kiosk_ui.i18n import tr
from tests.kiosk.conftest import finish, kiosk_config, release, run_harness, wait_online, wait_token
from tests.support.receipts import wait_receipts
from tests.support.waiting import wait_until

R1 = PROFILES["resident-1"]["values"]
NAME, NUMBER = R1["name"], R1["id_number"]


def back_home(rate: bool = False):
    steps = [["press", "finish"], ["screen", "rating"]]
    steps += [["press", "star:4"], ["press", "submit_rating"]] if rate else [["press", "skip"]]
    return steps + [["screen", "done"], ["press", "home"], ["screen", "attract"], ["wiped"]]


TAKE_CARD = ["sim", "id_reader", {"cmd": "remove_card"}]  # a resident takes their card when done


def identify(service: str, port: str = "id_reader", card: dict | None = None):
    return [["press", "start"], ["press", f"service:{service}"], ["screen", "identify"],
            ["sim", port, card or {"cmd": "place_card", "profile": "resident-1"}],
            ["press", "confirm"]]


SCRIPT = [
    # The wake travels sensor -> board (debounce) -> serial link -> driver -> UI clock: about 0.15 s
    # after the simulator took the command. Wait for it; a snapshot right away raced it (the flake).
    ["screen", "attract"], ["sim", "supervisor", {"cmd": "presence"}], ["woken"], ["sync", "online"], ["status"],
    # Queue ticket, printed, rated.
    ["press", "start"], ["screen", "menu"], ["press", "service:queue_ticket"], ["screen", "step"],
    ["press", "option:general"], ["screen", "result"], ["text", "A001"], ["press", "print"],
    ["text", "打印完成"], *back_home(rate=True),
    # Appointment: masked name shown, slots from the backend.
    ["press", "start"], ["press", "service:appointment"], ["screen", "identify"],
    ["sim", "id_reader", {"cmd": "place_card", "profile": "resident-1"}], ["text", NAME[0] + "*" * (len(NAME) - 1)],
    ["press", "confirm"], ["press", "option:centre"], ["screen", "step"], ["press_prefix", "option:20"],
    ["screen", "result"], ["text", "预约成功"], ["press", "print"], ["text", "打印完成"], *back_home(), TAKE_CARD,
    # Certificate: printed by itself, QR on the receipt.
    *identify("certificate"), ["press", "option:residence"], ["screen", "result", 30], ["text", "打印完成"],
    *back_home(),
    TAKE_CARD,
    # Certificate check by QR: garbage first, then the code the test reads from the controller.
    ["press", "start"], ["press", "service:certificate_check"], ["screen", "identify"],
    ["sim", "scanner", {"cmd": "scan", "data": "%%\u0001garbage"}], ["text", "无法识别"],
    ["sync", "cert"], ["sim", "scanner", {"cmd": "scan", "data": "$SYNC"}], ["screen", "result"],
    ["text", "证明有效"], *back_home(),
    # Social-security card.
    ["press", "start"], ["press", "service:social_security"], ["screen", "identify"],
    ["sim", "card_reader", {"cmd": "place_card", "kind": "social_security"}], ["screen", "card_pin"],
    *[["press", f"pin:{c}"] for c in "1111✓"], ["text", "密码不正确"],
    *[["press", f"pin:{c}"] for c in "123456✓"], ["press", "confirm"],
    ["screen", "result"], ["text", "社保卡"], *back_home(),
    ["sim", "card_reader", {"cmd": "remove_card"}],
    # Volunteer time bank: check in, then balance.
    *identify("volunteer"), ["press", "option:check_in"], ["text", "签到成功"], *back_home(), TAKE_CARD,
    *identify("volunteer"), ["press", "option:balance"], ["text", "签到状态"], *back_home(), TAKE_CARD,
    # Fault: the card is taken away while the reader works on it; the resident places it again.
    ["press", "start"], ["press", "service:volunteer"], ["screen", "identify"],
    ["sim", "id_reader", {"cmd": "card_latency", "seconds": 1.0}],
    ["sim", "id_reader", {"cmd": "place_card", "profile": "resident-1"}], ["mark"],
    ["sim", "id_reader", {"cmd": "remove_card"}], ["screen", "identify"],
    ["sim", "id_reader", {"cmd": "card_latency", "seconds": 0.02}],
    ["sim", "id_reader", {"cmd": "place_card", "profile": "resident-1"}],
    ["text", NAME[0] + "*" * (len(NAME) - 1)], ["press", "back"], ["press", "home"], ["screen", "attract"], TAKE_CARD,
    # Notices for the elderly; feedback.
    ["press", "start"], ["press", "service:notices"], ["press", "option:elderly"], ["text", "长者免费体检"],
    *back_home(),
    # Feedback says what the problem is: the choices follow the category (safety: no street lights).
    ["press", "start"], ["press", "service:feedback"], ["press", "option:safety"], ["screen", "step"],
    ["text", "电动车在楼道充电"], ["no_text", "路灯不亮"], ["press", "option:parking"], ["press", "option:urgent"],
    *[["press", f"pin:{c}"] for c in "123✓"], ["text", "号码不正确"], ["press", "pin:C"],
    *[["press", f"pin:{c}"] for c in "13812345678✓"], ["text", "已登记"], ["text", "致电 138****5678"],
    ["text", "问题：乱停车、占用通道"], ["press", "print"], ["text", "打印完成"], *back_home(),
    ["press", "start"], ["press", "service:feedback"], ["press", "option:other"], ["press", "option:praise"],
    ["press", "option:normal"], ["press", "skip"], ["text", "3 个工作日内回复"], ["text", "问题：表扬"], *back_home(),
    # Fault: printer out of paper.
    ["sim", "printer", {"cmd": "paper", "state": "out"}],
    ["press", "start"], ["press", "service:queue_ticket"], ["press", "option:civil"], ["press", "print"],
    ["screen", "print_failed"], ["text", "缺纸"], ["press", "show_on_screen"], ["screen", "result"],
    ["text", "C001"], *back_home(),
    ["sim", "printer", {"cmd": "paper", "state": "ok"}],
    # Idle timeout with the visible countdown.
    # The large countdown: "continue" keeps the session, a touch anywhere on it too, else it ends.
    *identify("volunteer"), ["lang", "en"], ["idle", 50], ["text", "Ending in"], ["press", "continue"],
    ["no_text", "Ending in"], ["screen", "step"], ["idle", 50], ["text", "Ending in"], ["idle", 20],
    ["screen", "attract"], ["wiped"], TAKE_CARD,
    # Maintenance: hidden gesture + PIN, test print, out again.
    ["corner", 5], ["screen", "pin"], ["press", "pin:1"], ["press", "pin:✓"], ["text", "密码错误"],
    ["press", "pin:2"], ["press", "pin:4"], ["press", "pin:6"], ["press", "pin:8"], ["press", "pin:✓"],
    ["screen", "maintenance"], ["press", "test_print"], ["text", tr("maint.test_print_ok")], ["press", "exit"],
    ["screen", "attract"],
    # The controller sets out-of-service, then normal, then changes the catalogue.
    ["sync", "oos"], ["screen", "out_of_service"], ["sync", "normal"], ["screen", "attract"],
    ["sync", "catalogue"], ["press", "start"], ["screen", "menu"], ["status"], ["press", "home"],
    # Controller unreachable: queue tickets still work (local numbers), certificates do not.
    ["sync", "offline"], ["press", "start"], ["text", "暂时无法连接"], ["press", "service:queue_ticket"],
    ["press", "option:general"], ["text", "LA001"], ["press", "finish"], ["press", "skip"], ["press", "home"],
    ["wiped"],
]


def test_every_service_end_to_end(broker, controller, sniffer, procs, tmp_path, artifacts):
    p = run_harness(procs, tmp_path, SCRIPT, artifacts=artifacts, tag="e2e",
                    config=kiosk_config(tmp_path, broker.url, public_key=controller.public_key(),
                                        extra='time_zone = "UTC"\n'))

    def go(token, value=""):
        wait_token(p, token)
        release(p, token, value)

    def set_mode(mode):
        wait_online(controller)
        cid = controller.send_command("k-ui", "set_mode", {"mode": mode}, "test")
        assert controller.wait_command(cid, 30)["status"] == "succeeded"

    wait_online(controller)
    go("online")
    first = json.loads(p.wait_for("STATUS", timeout=60).split(" ", 1)[1])
    assert first["woken"] >= 1 and first["online"] is True, f"{first}\n" + "\n".join(
        line[:200] for line in p.stderr_lines if "WARNING" in line or "supervisor" in line or "critical" in line)
    # A fleet test print goes through the app's own printer driver (the app owns the ports).
    cid = controller.send_command("k-ui", "test_print", {}, "test")
    assert controller.wait_command(cid, 30)["status"] == "succeeded"
    db = sqlite3.connect(tmp_path / "controller" / "controller.sqlite3")
    wait_token(p, "cert")
    code = db.execute("SELECT code FROM svc_certificates").fetchone()[0]
    p.proc.stdin.write(f"cert KIOSK-CERT:{code}\n")
    p.proc.stdin.flush()
    wait_token(p, "oos")
    set_mode("out_of_service")
    go("oos")
    wait_token(p, "normal")
    set_mode("normal")
    go("normal")
    ids = [s["id"] for s in load_default_document()["services"] if s["id"] != "feedback"]
    wait_token(p, "catalogue")
    # The controller's time_zone rides with every desired config: the app (started with its own UTC)
    # prints receipts in the fleet's zone from then on.
    version = controller.config_set("fleet", {"services": ids}, user="test")
    wait_until(lambda: ((controller.kiosk("k-ui") or {}).get("config") or {}).get("reported_version") == version,
               30, "the kiosk to report the new config", interval=0.05)
    go("catalogue")
    status = json.loads(p.wait_for("STATUS", timeout=60).split(" ", 1)[1])
    assert "feedback" not in status["menu"] and "queue_ticket" in status["menu"]
    assert status["time_zone"] == controller.config.time_zone == "Asia/Shanghai"
    wait_token(p, "offline")
    controller.stop()
    controller.stopped_by_test = True
    go("offline")
    finish(p, timeout=200)

    # The backend stored what the residents did.
    assert db.execute("SELECT COUNT(*) FROM svc_tickets").fetchone()[0] == 2
    assert db.execute("SELECT COUNT(*) FROM svc_appointments").fetchone()[0] == 1
    assert db.execute("SELECT COUNT(*) FROM svc_volunteer_sessions").fetchone()[0] == 1
    assert db.execute("SELECT category, problem, urgency, phone FROM svc_feedback ORDER BY created").fetchall() == [
        ("safety", "parking", "urgent", "13812345678"), ("other", "praise", "normal", "")]
    assert db.execute("SELECT stars FROM svc_ratings").fetchall() == [(4,)]
    cert = db.execute("SELECT holder_name, id_masked FROM svc_certificates").fetchone()
    assert cert == (NAME, NUMBER[:4] + "*" * 10 + NUMBER[-4:])
    receipts = wait_receipts(tmp_path / "kiosk" / "receipts", 4)
    assert any(code in r.read_text(encoding="utf-8") or "证明" in r.read_text(encoding="utf-8") for r in receipts)
    assert any("问题：乱停车、占用通道" in r.read_text(encoding="utf-8") for r in receipts)  # the printed feedback slip

    # Privacy: the ID number nowhere; the name only in the certificate request and its record.
    for topic, payload in sniffer:
        text = payload.decode("utf-8", "replace")
        assert NUMBER not in text, topic
        if NAME in text:
            assert topic.endswith("svc/request") and '"op":"issue"' in text, (topic, text[:200])
    for line in p.stderr_lines + p.stdout_lines + controller.log_lines:
        assert NUMBER not in line and NAME not in line and "13812345678" not in line, line
    for (table,) in db.execute("SELECT name FROM sqlite_master WHERE type='table'").fetchall():
        for row in db.execute(f"SELECT * FROM {table}"):  # noqa: S608 - table names from sqlite_master
            text = json.dumps(row, ensure_ascii=False, default=str)
            assert NUMBER not in text, table
            if NAME in text:
                assert table == "svc_certificates", table


def test_critical_device_fault_takes_the_kiosk_out_of_service_until_it_recovers(broker, procs, tmp_path, artifacts):
    # A ticket-printing kiosk: the printer is critical. Paper out -> out of service; paper in -> back.
    steps = [["screen", "attract"], ["sim", "printer", {"cmd": "paper", "state": "out"}],
             ["screen", "out_of_service", 40],
             ["sim", "printer", {"cmd": "paper", "state": "ok"}], ["screen", "attract", 40],
             ["press", "start"], ["screen", "menu"]]
    p = run_harness(procs, tmp_path, steps, artifacts=artifacts, tag="critical",
                    config=kiosk_config(tmp_path, broker.url, extra='critical_devices = ["printer", "id_reader"]\n'))
    finish(p)
