"""Printer driver against the printer simulator over real pseudo-terminals, faults included."""

from __future__ import annotations

import shutil

from PIL import Image, ImageDraw

from device_drivers.printer import Barcode128, Logo, QrCode, Receipt, ReceiptPrinter, TextLine
from tests.support.receipts import wait_receipt
from tests.support.waiting import wait_until


def logo(width=200, height=48):
    img = Image.new("L", (width, height), 255)
    d = ImageDraw.Draw(img)
    d.rectangle([2, 2, width - 3, height - 3], outline=0, width=3)
    d.ellipse([10, 8, 42, 40], fill=0)
    return img


def certificate(lines=12):
    items = [TextLine("社区综合服务中心", align="center", bold=True, width=2, height=2),
             TextLine("居住证明（测试样张）", align="center")]
    items += [TextLine(f"第{i + 1:02d}行：兹证明测试居民一在本社区居住，特此证明。") for i in range(lines)]
    items += [QrCode("https://kiosk.example.invalid/verify/TEST-0001"), Barcode128("TEST0001"), Logo(logo())]
    return Receipt(items)


def test_certificate_receipt_prints_text_qr_barcode_logo_and_png(sim, tmp_path, artifacts):
    out = tmp_path / "r"
    _, link = sim("printer", out=out)
    p = ReceiptPrinter(str(link))
    result = p.print_receipt(certificate())
    assert result.status == "completed" and result.reason is None and result.bytes_sent == result.total_bytes
    text = wait_receipt(out)
    assert text.startswith("社区综合服务中心\n居住证明（测试样张）\n第01行")
    assert "[QR https://kiosk.example.invalid/verify/TEST-0001]" in text
    assert "[CODE128 TEST0001]" in text and "[IMAGE]" in text
    png = out / "receipt-0001.png"
    img = Image.open(png)
    assert img.width == 576 and img.height > 600
    shutil.copy(png, artifacts / "printer-certificate.png")
    assert p.counters["cuts"] == 1 and p.counters["lines_printed"] >= 14
    p.close()


def test_paper_out_in_the_middle_of_a_job_fails_the_job_with_the_reason(sim, tmp_path):
    out = tmp_path / "r"
    proc, link = sim("printer", out=out)
    p = ReceiptPrinter(str(link))
    assert proc.send({"cmd": "paper", "state": "out", "after_lines": 5})["ok"]
    result = p.print_receipt(certificate())
    assert result.status == "failed" and result.reason == "paper_out" and not result.refused
    assert not list(out.glob("receipt-*.txt"))
    assert p.query_status().paper == "out"
    # Refused outright while the paper is out; fine again once a roll is loaded.
    again = p.print_receipt(Receipt([TextLine("x")]))
    assert again.refused and again.reason == "paper_out"
    proc.send({"cmd": "paper", "state": "ok"})
    assert p.print_receipt(Receipt([TextLine("新纸卷")])).ok
    assert wait_receipt(out) == "新纸卷\n"


def test_cover_open_refuses_and_low_paper_warns(sim):
    proc, link = sim("printer")
    p = ReceiptPrinter(str(link))
    proc.send({"cmd": "cover", "open": True})
    r = p.print_receipt(Receipt([TextLine("x")]))
    assert r.refused and r.reason == "cover_open"
    st = p.query_status()
    assert st.known and st.cover_open and st.online is False
    proc.send({"cmd": "cover", "open": False})
    proc.send({"cmd": "paper", "state": "low"})
    r = p.print_receipt(Receipt([TextLine("x")]))
    assert r.ok and "paper_low" in r.warnings


def test_rare_name_characters_depend_on_the_profile(sim, tmp_path):
    out = tmp_path / "r"
    _, link = sim("printer", out=out)
    p80 = ReceiptPrinter(str(link), profile="generic-80")  # four-byte GB18030 font
    assert p80.print_receipt(Receipt([TextLine("姓名：测试𠮷")])).ok
    assert wait_receipt(out, 1) == "姓名：测试𠮷\n"
    p80.close()
    p58 = ReceiptPrinter(str(link), profile="generic-58")  # two-byte fonts only
    r = p58.print_receipt(Receipt([TextLine("姓名：测试𠮷")]))
    assert r.ok and len(r.warnings) == 1 and "U+20BB7" in r.warnings[0]
    assert wait_receipt(out, 2) == "姓名：测试〓\n"


def test_silent_printer_is_unknown_and_job_fails(sim):
    proc, link = sim("printer")
    p = ReceiptPrinter(str(link))
    proc.send({"cmd": "mute"})
    assert p.query_status().known is False
    r = p.print_receipt(Receipt([TextLine("x")]))
    assert r.status == "failed" and r.reason == "not_answering" and not r.refused


def test_xoff_pauses_the_driver_and_the_job_completes(sim, tmp_path):
    out = tmp_path / "r"
    proc, link = sim("printer", out=out)
    proc.send({"cmd": "speed", "bytes_per_s": 5000})
    p = ReceiptPrinter(str(link))
    pauses = []
    orig = p._on_data

    def spy(data):
        if b"\x13" in data:
            pauses.append(True)
        orig(data)

    p.link.on_data = spy
    r = p.print_receipt(Receipt([Logo(logo(576, 90))]))  # ~6.5 kB of raster bands
    assert r.ok, r
    assert pauses, "the simulator never sent XOFF"
    assert "[IMAGE]" in wait_receipt(out)


def test_unplug_fails_the_job_then_reconnects_and_resyncs(sim, tmp_path):
    out = tmp_path / "r"
    proc, link = sim("printer", out=out)
    p = ReceiptPrinter(str(link))
    proc.send({"cmd": "unplug"})
    wait_until(lambda: not p.link.connected, 10, "the link to see the unplug")
    r = p.print_receipt(Receipt([TextLine("x")]))
    assert r.status == "failed" and r.reason == "not_answering"
    assert p.last_status.known is False
    proc.send({"cmd": "replug"})
    # The reconnect (backoff up to 2 s after attempts on the unplugged port) is asserted below.
    wait_until(lambda: p.link.reconnects == 1, 15, "the link reopened the replugged port")
    wait_until(lambda: p.query_status().known, 10, "the replugged printer's status")
    assert p.print_receipt(Receipt([TextLine("重新连接")])).ok
    assert wait_receipt(out) == "重新连接\n"
    assert p.link.reconnects == 1
    assert proc.send({"cmd": "status"})["asb_mask"] == 0x0E  # ASB re-enabled after the replug


def test_garbled_status_bytes_are_resynchronised(sim):
    proc, link = sim("printer")
    p = ReceiptPrinter(str(link))
    proc.send({"cmd": "garble", "rate": 0.5})
    for _ in range(3):
        p.query_status()  # may be unknown; never an exception, never a wrong "fine" from noise
    proc.send({"cmd": "garble", "rate": 0})
    # Late garbled replies drain; then answers are whole again.
    st = wait_until(lambda: (s := p.query_status()).known and s, 15,
                    "the printer's status known again after the noise stopped")
    assert st.paper == "ok" and st.cover_open is False


def test_slow_printer_late_replies_are_not_taken_for_new_answers(sim):
    proc, link = sim("printer")
    p = ReceiptPrinter(str(link))
    proc.send({"cmd": "cover", "open": True})
    proc.send({"cmd": "slow", "seconds": 0.7})
    assert p.query_status().known is False  # the answer comes after the 0.5 s timeout
    proc.send({"cmd": "slow", "seconds": 0.0})
    proc.send({"cmd": "cover", "open": False})
    st = p.query_status()
    assert st.known and st.cover_open is False and st.online is True


def test_58mm_model_renders_narrow_paper(sim, tmp_path):
    out = tmp_path / "r"
    proc, link = sim("printer", out=out)
    proc.send({"cmd": "model", "paper_mm": 58})
    p = ReceiptPrinter(str(link), profile="generic-58")
    assert p.print_receipt(Receipt([TextLine("五十八毫米", align="center"), Barcode128("58MM")])).ok
    wait_receipt(out)
    assert Image.open(out / "receipt-0001.png").width == 384


def test_model_without_asb_finds_paper_out_at_the_final_status_check(sim, tmp_path):
    out = tmp_path / "r"
    proc, link = sim("printer", out=out)
    p = ReceiptPrinter(str(link), profile="rtscts-80")  # hardware handshake, no automatic status back
    assert proc.send({"cmd": "status"})["asb_mask"] == 0
    assert p.print_receipt(Receipt([TextLine("握手")])).ok
    assert wait_receipt(out) == "握手\n"
    proc.send({"cmd": "paper", "state": "out", "after_lines": 3})
    r = p.print_receipt(certificate())
    assert r.status == "failed" and r.reason == "paper_out" and r.bytes_sent == r.total_bytes
