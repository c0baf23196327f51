"""Peripheral stack targets (issue 3), measured against the simulators over real pseudo-terminals.

    .venv/bin/python benchmarks/peripherals_bench.py [--rounds 7] [--json]

1. Certificate receipt (header, 12 lines of Chinese text, QR code, logo, cut) printed by the
   driver to ``python -m hardware_sim printer`` at 115200 baud: job time (status check before,
   every byte paced to the line, status check after) against the wire-time lower bound
   ``job bytes x 10 / baud``. Target <= 1.15 x.
2. ID card find + select + read by the driver against ``python -m hardware_sim id-reader``:
   time against the wire time of the six frames plus the simulator's configured card latency.
   Target <= 1.2 x.
3. Decoding at full line rate: (a) each codec decodes one second's worth of line data (11,520
   bytes at 115200 baud, fed in 32-byte reads); CPU seconds / line seconds. (b) the scanner
   simulator streams distinct codes at 115200 baud for two seconds; the CPU time of this whole
   process (reader thread, pyserial, decoder, de-bounce, queue) / elapsed time. Target < 5 %.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from device_drivers import escpos, pn532, samv, scanner_codec  # noqa: E402
from device_drivers.id_reader import IdCardReader  # noqa: E402
from device_drivers.printer import (  # noqa: E402
    Barcode128,
    Logo,
    PrinterProfile,
    QrCode,
    Receipt,
    ReceiptPrinter,
    TextLine,
    render_receipt,
)
from device_drivers.scanner import BarcodeScanner  # noqa: E402
from device_drivers.transport import wire_time  # noqa: E402
from hardware_sim import identities  # noqa: E402
from tests.support.processes import start_sim  # noqa: E402

BAUD = 115200


def logo_image():
    from PIL import Image, ImageDraw

    img = Image.new("L", (384, 96), 255)
    d = ImageDraw.Draw(img)
    d.rectangle([2, 2, 381, 93], outline=0, width=4)
    d.ellipse([12, 12, 84, 84], fill=0)
    d.text((110, 36), "COMMUNITY SERVICE CENTRE", fill=0)
    return img


def certificate() -> Receipt:
    items = [TextLine("社区综合服务中心", align="center", bold=True, width=2, height=2),
             TextLine("居住证明（测试样张）", align="center")]
    items += [TextLine(f"第{i + 1:02d}行：兹证明测试居民一在本社区居住，特此证明。") for i in range(12)]
    items += [QrCode("https://kiosk.example.invalid/verify/TEST-0001"), Barcode128("TEST0001"), Logo(logo_image())]
    return Receipt(items)


def bench_receipt(tmp: Path, rounds: int) -> dict:
    proc = start_sim("printer", tmp / "printer.tty", out=tmp / "receipts", baud=BAUD)
    try:
        p = ReceiptPrinter(str(tmp / "printer.tty"), BAUD)
        doc = certificate()
        p.print_receipt(doc)  # warm-up (imports, font cache in the simulator)
        times, nbytes = [], 0
        for _ in range(rounds):
            t0 = time.perf_counter()
            job = p.print_receipt(doc)
            times.append(time.perf_counter() - t0)
            assert job.ok, job
            nbytes = job.total_bytes
        p.close()
    finally:
        proc.stop()
    bound = wire_time(nbytes, BAUD)
    med = statistics.median(times)
    return {"job_bytes": nbytes, "wire_lower_bound_s": round(bound, 4), "median_s": round(med, 4),
            "max_s": round(max(times), 4), "ratio": round(med / bound, 3), "target": 1.15}


def bench_id_card(tmp: Path, rounds: int, latency: float = 0.05) -> dict:
    proc = start_sim("id-reader", tmp / "id.tty", baud=BAUD)
    try:
        proc.send({"cmd": "place_card", "profile": "resident-1"})
        proc.send({"cmd": "card_latency", "seconds": latency})
        r = IdCardReader(str(tmp / "id.tty"), BAUD)
        r.read_card(timeout=2).wipe()
        times = []
        for _ in range(rounds):
            t0 = time.perf_counter()
            ident = r.read_card(timeout=2)
            times.append(time.perf_counter() - t0)
            ident.wipe()
        r.close()
    finally:
        proc.stop()
    text, photo = identities.card("resident-1")
    frames = [samv.command(samv.FIND_CARD), samv.response(0x9F, bytes(4)), samv.command(samv.SELECT_CARD),
              samv.response(0x90, bytes(8)), samv.command(samv.READ_TEXT_PHOTO),
              samv.response(0x90, bytes(4) + text + photo)]
    nbytes = sum(map(len, frames))
    bound = wire_time(nbytes, BAUD) + latency
    med = statistics.median(times)
    return {"frame_bytes": nbytes, "card_latency_s": latency, "bound_s": round(bound, 4),
            "median_s": round(med, 4), "max_s": round(max(times), 4), "ratio": round(med / bound, 3),
            "target": 1.2}


def _stream(unit: bytes, seconds: float = 1.0) -> bytes:
    n = int(BAUD / 10 * seconds)
    return (unit * (n // len(unit) + 1))[:n]


def bench_codecs(repeat: int = 5) -> dict:
    if repeat < 1:
        raise ValueError(f"repeat must be at least 1, got {repeat}")
    text, photo = identities.card("resident-1")
    job = b"".join(render_receipt(PrinterProfile.load("generic-80"), certificate())[0])
    streams = {
        "escpos device parser (receipt job)": (job, lambda: escpos.EscPosParser().feed),
        "escpos status reader (ASB + replies)": (escpos.asb_block() + b"\x12\x11", lambda: escpos.StatusReader().feed),
        "samv decoder (read answers)": (samv.response(0x90, bytes(4) + text + photo), lambda: samv.SamvDecoder().feed),
        "pn532 decoder (APDU answers)": (pn532.response(0x40, b"\x00" + bytes(40) + b"\x90\x00"),
                                         lambda: pn532.Pn532Decoder().feed),
        "scanner decoder (QR lines)": (scanner_codec.encode_scan("https://kiosk.example.invalid/a?b=1", aim="Q1"),
                                       lambda: scanner_codec.ScannerDecoder().feed),
    }
    out = {}
    for name, (unit, make) in streams.items():
        data = _stream(unit)
        cpus = []
        for _ in range(repeat):
            feed = make()
            t0 = time.process_time()
            for i in range(0, len(data), 32):
                feed(data[i : i + 32])
            cpus.append(time.process_time() - t0)
        best = min(cpus)
        out[name] = {"cpu_s_per_line_s": round(best, 5), "percent_of_core": round(best * 100, 2)}
    return out


def bench_driver_stream(tmp: Path, seconds: float = 2.0) -> dict:
    proc = start_sim("scanner", tmp / "scan.tty", baud=BAUD)
    try:
        t_open = time.perf_counter()
        s = BarcodeScanner(str(tmp / "scan.tty"), BAUD)
        code = "https://kiosk.example.invalid/appointment?id=A"
        per = len(scanner_codec.encode_scan(code + "-000000", aim="Q1"))
        count = int(BAUD / 10 * seconds / per)
        time.sleep(0.2)
        c0, t0 = time.process_time(), time.perf_counter()
        proc.send({"cmd": "scan", "data": code, "repeat": count, "numbered": True})
        got = 0
        while got < count and time.perf_counter() - t0 < seconds * 3:
            if s.next_scan(0.5) is not None:
                got += 1
        elapsed = time.perf_counter() - t0
        cpu = time.process_time() - c0
        s.close()
        reader_cpu, reader_life = s.link.reader_cpu_s, time.perf_counter() - t_open
        if reader_cpu is None:
            raise RuntimeError("the scanner's reader thread did not stop when it was closed: its CPU time is unknown")
    finally:
        proc.stop()
    return {"scans": got, "expected": count, "elapsed_s": round(elapsed, 3), "line_bytes": count * per,
            "process_cpu_s": round(cpu, 4), "percent_of_core": round(cpu / elapsed * 100, 2),
            "reader_thread_cpu_s": round(reader_cpu, 4), "reader_thread_life_s": round(reader_life, 3),
            "reader_percent_of_core": round(reader_cpu / elapsed * 100, 2), "target_percent": 5}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--rounds", type=int, default=7)
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args(argv)
    with tempfile.TemporaryDirectory() as d:
        tmp = Path(d)
        res = {"receipt": bench_receipt(tmp, args.rounds), "id_card": bench_id_card(tmp, args.rounds),
               "codecs": bench_codecs(), "driver_stream": bench_driver_stream(tmp)}
    if args.json:
        print(json.dumps(res, indent=1, ensure_ascii=False))
        return 0
    r, i, s = res["receipt"], res["id_card"], res["driver_stream"]
    print(f"certificate receipt: {r['job_bytes']} B, wire {r['wire_lower_bound_s']} s, median {r['median_s']} s "
          f"(max {r['max_s']}) -> {r['ratio']} x (target <= 1.15)")
    print(f"ID card find+select+read: {i['frame_bytes']} B + {i['card_latency_s']} s latency = {i['bound_s']} s, "
          f"median {i['median_s']} s (max {i['max_s']}) -> {i['ratio']} x (target <= 1.2)")
    for name, v in res["codecs"].items():
        print(f"decode 1 s of line data, {name}: {v['percent_of_core']} % of a core")
    print(f"driver process while the scanner streams at 115200: {s['scans']}/{s['expected']} scans in "
          f"{s['elapsed_s']} s, CPU {s['process_cpu_s']} s = {s['percent_of_core']} % of a core (target < 5); "
          f"the port's reader thread alone (read + decode + de-bounce + hand-off, over its whole "
          f"{s['reader_thread_life_s']} s life) {s['reader_thread_cpu_s']} s = {s['reader_percent_of_core']} % "
          "of the streaming time")
    return 0


if __name__ == "__main__":
    sys.exit(main())
