"""The installation self-test: every configured device answers, a receipt proves it on paper.

Each check reports ``pass``, ``fail`` (with what to check) or ``skipped`` (device not in the
config). Device drivers are created through ``factories`` so a test can point them anywhere;
by default they are the project's drivers opened on the ports from ``kiosk.toml``.
"""

from __future__ import annotations

import dataclasses
import logging
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from foundation.errors import KioskError
from foundation.settings import KioskConfig

log = logging.getLogger(__name__)

HINTS = {
    "printer": "check the printer's power, USB cable, paper roll and cover, and devices.printer in kiosk.toml",
    "id_reader": "check the ID reader's cable and power; a SAM fault needs the reader replaced",
    "card_reader": "check the contactless reader's cable and devices.card_reader (baud 115200)",
    "scanner": "check the scanner's cable and that its profile has a host trigger",
    "supervisor": "check the cable between the Pi and the supervisor board, and run flash-firmware",
}


@dataclass
class Check:
    name: str
    status: str  # pass | fail | skipped
    detail: str = ""
    hint: str = ""


@dataclass
class SelfTestReport:
    kiosk_id: str
    site: str
    started_at: float
    checks: list[Check] = field(default_factory=list)

    @property
    def passed(self) -> bool:
        return all(c.status != "fail" for c in self.checks)

    def to_dict(self) -> dict[str, Any]:
        return {"kiosk_id": self.kiosk_id, "site": self.site, "started_at": self.started_at,
                "result": "pass" if self.passed else "fail", "checks": [dataclasses.asdict(c) for c in self.checks]}


def _printer(cfg: KioskConfig):
    from device_drivers.printer import ReceiptPrinter

    return ReceiptPrinter(cfg.devices.printer, profile=cfg.devices.printer_profile)


def _id_reader(cfg: KioskConfig):
    from device_drivers.id_reader import IdCardReader

    return IdCardReader(cfg.devices.id_reader)


def _card_reader(cfg: KioskConfig):
    from device_drivers.card_reader import CardReader

    return CardReader(cfg.devices.card_reader)


def _scanner(cfg: KioskConfig):
    from device_drivers.scanner import BarcodeScanner

    return BarcodeScanner(cfg.devices.scanner)


def _supervisor(cfg: KioskConfig):
    from device_drivers.supervisor import SupervisorDriver

    return SupervisorDriver(cfg.devices.supervisor)


DEFAULT_FACTORIES: dict[str, Callable[[KioskConfig], Any]] = {
    "printer": _printer, "id_reader": _id_reader, "card_reader": _card_reader, "scanner": _scanner,
    "supervisor": _supervisor,
}


def _check_printer(drv) -> str:
    res = drv.test_print()
    if not res.ok:
        raise KioskError(f"test print failed: {(res.reason or 'unknown').replace('_', ' ')}")
    return f"test receipt printed ({res.lines} lines)"


def _check_id_reader(drv) -> str:
    drv.sam_status()
    return "SAM module healthy"


def _check_card_reader(drv) -> str:
    fw = drv.firmware or drv.wake()
    return f"PN532 firmware IC 0x{fw[0]:02x} version {fw[1]}.{fw[2]}"


def _check_scanner(drv) -> str:
    drv.trigger(True)
    drv.trigger(False)
    return "trigger on/off accepted"


def _check_supervisor(drv) -> str:
    hello = drv.hello(timeout=3)
    st = drv.status(timeout=3)
    if st.sensor not in ("ok", "absent"):
        raise KioskError(f"enclosure sensor reports {st.sensor}")
    temp = f"{st.celsius:.1f} C" if st.celsius is not None else "no temperature"
    return (f"firmware {hello.firmware}, reset {hello.reset_cause}, sensor {st.sensor}, {temp}, "
            f"door {'open' if st.door_open else 'closed' if st.door_open is not None else 'unknown'}")


CHECKS = {"printer": _check_printer, "id_reader": _check_id_reader, "card_reader": _check_card_reader,
          "scanner": _check_scanner, "supervisor": _check_supervisor}


def run_self_test(cfg: KioskConfig, *, factories: dict | None = None, clock: Callable[[], float] = time.time,
                  progress: Callable[[str], None] = lambda _m: None) -> SelfTestReport:
    factories = {**DEFAULT_FACTORIES, **(factories or {})}
    report = SelfTestReport(cfg.kiosk_id, cfg.site, clock())
    printer = None
    for name, check in CHECKS.items():
        port = getattr(cfg.devices, name)
        if not port:
            report.checks.append(Check(name, "skipped", "not configured in kiosk.toml"))
            continue
        progress(f"checking {name} on {port}")
        drv = None
        try:
            drv = factories[name](cfg)
            report.checks.append(Check(name, "pass", check(drv)))
        except (KioskError, OSError) as exc:
            report.checks.append(Check(name, "fail", str(exc), HINTS[name]))
        finally:
            if drv is not None and name == "printer" and report.checks[-1].status == "pass":
                printer = drv  # kept open for the receipt
            elif drv is not None:
                drv.close()
    progress("printing the provisioning receipt")
    if printer is not None:
        try:
            print_receipt(printer, report)
        finally:
            printer.close()
    log.info("self-test", extra={"fields": {"kiosk_id": cfg.kiosk_id, "result": report.to_dict()["result"]}})
    return report


def receipt_qr_data(report: SelfTestReport) -> str:
    checks = ",".join(f"{c.name}:{c.status}" for c in report.checks)
    return f"KIOSK:{report.kiosk_id};SITE:{report.site};TS:{int(report.started_at)};RESULT:" \
           f"{'pass' if report.passed else 'fail'};{checks}"


def receipt_lines(report: SelfTestReport) -> list[str]:
    when = time.strftime("%Y-%m-%d %H:%M", time.localtime(report.started_at))
    mark = {"pass": "OK", "fail": "FAIL", "skipped": "--"}
    return [f"终端 Kiosk: {report.kiosk_id}", f"社区 Site: {report.site}", f"时间 Time: {when}",
            *(f"{c.name:<12} {mark[c.status]}" for c in report.checks),
            f"结果 Result: {'通过 PASS' if report.passed else '未通过 FAIL'}"]


def print_receipt(printer, report: SelfTestReport) -> None:
    from device_drivers.printer import QrCode, Receipt, TextLine

    items: list[TextLine | QrCode] = [TextLine("安装自检回执 Provisioning receipt", align="center", bold=True)]
    items += [TextLine(s) for s in receipt_lines(report)]
    items.append(QrCode(receipt_qr_data(report)))
    res = printer.print_receipt(Receipt(items))
    if not res.ok:
        report.checks.append(Check("receipt", "fail", f"receipt not printed: {res.reason}", HINTS["printer"]))


def terminal_qr(data: str) -> str:
    import io

    import qrcode

    qr = qrcode.QRCode(border=1)
    qr.add_data(data)
    buf = io.StringIO()
    qr.print_ascii(out=buf, invert=True)
    return buf.getvalue()


def report_to_controller(cfg: KioskConfig, report: SelfTestReport, *, timeout: float = 15.0) -> None:
    """Publish the result as a ``self_test`` event on the kiosk's own events topic (QoS 1)."""
    from contract import payloads
    from contract.mqtt_client import connect_with_retry, make_client
    from contract.topics import QOS, encode, topic
    from foundation.errors import BrokerUnavailable

    client = make_client(f"kiosk-{cfg.kiosk_id}-selftest", cfg.broker, ca_file=cfg.ca_file,
                         cert_file=cfg.cert_file, key_file=cfg.key_file)
    connect_with_retry(client, cfg.broker, keepalive=cfg.keepalive, max_attempts=3)
    client.loop_start()
    try:
        fields = {k: v for k, v in report.to_dict().items() if k != "kiosk_id"}
        body = payloads.event(cfg.kiosk_id, event_id=uuid.uuid4().hex, boot_id="", seq=0, ts=time.time(),
                              type="self_test", fields=fields)
        info = client.publish(topic(cfg.kiosk_id, "events"), encode(body), qos=QOS["events"])
        info.wait_for_publish(timeout)
        if not info.is_published():
            raise BrokerUnavailable(f"the broker {cfg.broker} did not confirm the self-test report in {timeout:.0f} s")
    finally:
        client.disconnect()
        client.loop_stop()
