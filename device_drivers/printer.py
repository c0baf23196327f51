"""Receipt printer driver: ESC/POS over a serial port, through the transport seam.

One reader thread (:class:`~device_drivers.serial_link.SerialLink`) owns the port and classifies
what the printer sends (DLE EOT replies, ASB blocks, XON/XOFF). A job is a :class:`Receipt`;
:meth:`ReceiptPrinter.print_receipt` always ends with a :class:`JobResult` (completed or failed
with a reason). A printer that does not answer is reported as unknown, never as fine.
"""

from __future__ import annotations

import itertools
import logging
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from device_drivers import escpos, profiles
from device_drivers.serial_link import Replies, SerialLink
from foundation.backoff import Backoff
from foundation.errors import ConfigError, DeviceError, DeviceTimeout, LocalProtocolError, TransportError

log = logging.getLogger(__name__)

# -- the document ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class TextLine:
    text: str
    align: str = "left"
    bold: bool = False
    width: int = 1
    height: int = 1


@dataclass(frozen=True)
class QrCode:
    data: str
    align: str = "center"
    ecc: str = "M"


@dataclass(frozen=True)
class Barcode128:
    data: str
    align: str = "center"
    height: int = 60


@dataclass(frozen=True)
class Logo:
    """A picture (PIL image or path) printed as a raster image, scaled to the paper width."""

    image: Any
    align: str = "center"
    max_width_dots: int | None = None


@dataclass(frozen=True)
class Feed:
    lines: int = 1


@dataclass
class Receipt:
    items: list = field(default_factory=list)
    cut: bool = True

    @classmethod
    def from_dicts(cls, items: list[dict], cut: bool = True) -> Receipt:
        """Build from plain dicts: ``{"text": ..., "align", "bold", "size": [w, h]}``,
        ``{"qr": ...}``, ``{"barcode": ...}``, ``{"logo": path}``, ``{"feed": n}``."""
        out: list = []
        for i, d in enumerate(items):
            if "text" in d:
                w, h = d.get("size", (1, 1))
                out.append(TextLine(str(d["text"]), d.get("align", "left"), bool(d.get("bold")), w, h))
            elif "qr" in d:
                out.append(QrCode(str(d["qr"]), d.get("align", "center")))
            elif "barcode" in d:
                out.append(Barcode128(str(d["barcode"]), d.get("align", "center")))
            elif "logo" in d:
                out.append(Logo(d["logo"], d.get("align", "center")))
            elif "feed" in d:
                out.append(Feed(int(d["feed"])))
            else:
                raise LocalProtocolError(f"receipt item {i} has none of text/qr/barcode/logo/feed")
        return cls(out, cut)


@dataclass
class JobResult:
    job_id: int
    status: str  # "completed" | "failed"
    reason: str | None = None
    refused: bool = False
    bytes_sent: int = 0
    total_bytes: int = 0
    seconds: float = 0.0
    lines: int = 0
    warnings: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return self.status == "completed"

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass
class PrinterStatus:
    """What the printer said. ``known`` is False when it did not answer: nothing is assumed."""

    known: bool
    online: bool | None = None
    cover_open: bool | None = None
    paper: str = "unknown"  # ok | low | out | unknown
    cutter_error: bool | None = None
    unrecoverable_error: bool | None = None

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class PrinterProfile:
    name: str
    dots_per_line: int
    chars_per_line: int
    charset: str
    flow_control: str
    raster_band_rows: int
    partial_cut: bool
    cut_feed_lines: int
    qr_native: bool
    qr_module: int
    asb: bool
    status_timeout_s: float
    write_chunk_bytes: int

    @classmethod
    def load(cls, name_or_path: str | Path) -> PrinterProfile:
        data = profiles.load("printer", name_or_path)
        kwargs = {}
        for f in cls.__dataclass_fields__.values():
            if f.name not in data:
                raise ConfigError("missing in printer profile", field=f.name, path=str(name_or_path))
            kwargs[f.name] = data[f.name]
        if kwargs["flow_control"] not in ("xonxoff", "rtscts", "none"):
            raise ConfigError("must be xonxoff, rtscts or none", field="flow_control")
        return cls(**kwargs)


def image_to_raster(image: Any, max_width: int) -> tuple[int, bytes]:
    """PIL image or path -> (width_bytes, rows) 1-bit, 1 = black, width padded to whole bytes."""
    from PIL import Image

    img = image if isinstance(image, Image.Image) else Image.open(image)
    img = img.convert("L")
    if img.width > max_width:
        img = img.resize((max_width, max(1, round(img.height * max_width / img.width))))
    width = (img.width + 7) // 8 * 8
    if width != img.width:
        padded = Image.new("L", (width, img.height), 255)
        padded.paste(img, (0, 0))
        img = padded
    bits = img.convert("1").tobytes()  # PIL: 1 = white
    return width // 8, bytes(b ^ 0xFF for b in bits)


_job_ids = itertools.count(1)


def _first(replies: list[int]) -> int | None:
    return replies.pop(0) if replies else None


def render_receipt(p: PrinterProfile, receipt: Receipt) -> tuple[list[bytes], int, list[str]]:
    """Receipt -> byte segments for a printer of profile ``p`` (raster bands separate so they can be
    paced), line count, warnings (characters replaced). Pure: no port, so it can be measured alone."""
    segs: list[bytes] = [escpos.INIT + escpos.CHINESE_ON]
    warnings: list[str] = []
    lines = 0
    for item in receipt.items:
        if isinstance(item, TextLine):
            data, warn = escpos.encode_chinese(item.text, p.charset)
            warnings += warn
            seg = escpos.align(item.align)
            if item.bold:
                seg += escpos.bold(True)
            if (item.width, item.height) != (1, 1):
                seg += escpos.size(item.width, item.height)
            seg += data + b"\n"
            if item.bold:
                seg += escpos.bold(False)
            if (item.width, item.height) != (1, 1):
                seg += escpos.size(1, 1)
            segs.append(seg)
            lines += 1 + item.text.count("\n")
        elif isinstance(item, QrCode):
            if not p.qr_native:
                raise LocalProtocolError(f"profile {p.name} has no native QR; render it as a Logo")
            segs.append(escpos.align(item.align) + escpos.qr(item.data, module=p.qr_module, ecc=item.ecc)
                        + b"\n")
            lines += 1
        elif isinstance(item, Barcode128):
            segs.append(escpos.align(item.align) + escpos.barcode_code128(item.data, height=item.height)
                        + b"\n")
            lines += 1
        elif isinstance(item, Logo):
            wb, rows = image_to_raster(item.image, item.max_width_dots or p.dots_per_line)
            segs.append(escpos.align(item.align))
            segs += escpos.raster_bands(wb, rows, p.raster_band_rows)
            lines += 1
        elif isinstance(item, Feed):
            segs.append(escpos.feed(item.lines))
            lines += item.lines
        else:
            raise LocalProtocolError(f"unknown receipt item {type(item).__name__}")
    segs.append(escpos.align("left") + escpos.CHINESE_OFF)
    if receipt.cut:
        segs.append(escpos.cut(partial=p.partial_cut, feed_lines=p.cut_feed_lines))
    return segs, lines, warnings


class ReceiptPrinter:
    def __init__(
        self,
        url: str,
        baudrate: int = 115200,
        *,
        profile: str | PrinterProfile = "generic-80",
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
        backoff: Backoff | None = None,
    ) -> None:
        self.url = url
        self.baudrate = baudrate
        self.profile = profile if isinstance(profile, PrinterProfile) else PrinterProfile.load(profile)
        self.clock = clock
        self.sleep = sleep
        self.counters = {"cuts": 0, "lines_printed": 0, "jobs_completed": 0, "jobs_failed": 0,
                         "communication_errors": 0}
        self._reader = escpos.StatusReader()
        self.replies = Replies(self.counters, clock, sleep)  # DLE EOT status bytes
        self._cond = self.replies.cond  # also guards the ASB state and XOFF
        self._asb: escpos.AsbStatus | None = None
        self._xoff = False
        self.last_status = PrinterStatus(known=False)
        kwargs = {"rtscts": True} if self.profile.flow_control == "rtscts" else {}
        self.link = SerialLink(url, baudrate, self._on_data, on_reconnect=self._resync,
                               on_lost=self._on_lost, backoff=backoff, sleep=sleep, clock=clock,
                               port_kwargs=kwargs)
        if self.profile.asb:
            self._send(escpos.asb_enable())

    # -- port and reader -------------------------------------------------------------------------
    def close(self) -> None:
        self.link.close()

    def _on_data(self, data: bytes) -> None:
        for ev in self._reader.feed(data):
            with self._cond:
                if isinstance(ev, escpos.StatusByte):
                    self.replies.put(ev.value)
                elif isinstance(ev, escpos.AsbStatus):
                    self._asb = ev
                    # The printer told us on its own: the status is current without polling.
                    self.last_status = PrinterStatus(
                        True, not ev.offline, ev.cover_open,
                        "out" if ev.paper_end else "low" if ev.paper_near_end else "ok",
                        ev.cutter_error, ev.unrecoverable_error)
                elif isinstance(ev, escpos.FlowControl):
                    self._xoff = not ev.xon
                else:
                    self.counters["communication_errors"] += 1

    def _on_lost(self, why: str) -> None:
        with self._cond:
            self.last_status = PrinterStatus(known=False)
            self._xoff = False

    def _resync(self) -> None:
        """After a replug: the printer may have been power-cycled; enable ASB and re-read status."""
        if self.profile.asb:
            self._send(escpos.asb_enable())
        self.query_status()

    def _send(self, data: bytes) -> None:
        self.link.write(data, hold=lambda: self._xoff)

    # -- status ----------------------------------------------------------------------------------
    def status(self, n: int) -> int:
        """One real-time status byte (DLE EOT n); no answer means unknown, never fine."""

        def send() -> None:
            try:
                self.link.wait_connected(0.0)
                self.link.write(escpos.status_request(n))  # real time: sent even under XOFF
            except TransportError:
                raise DeviceTimeout(f"printer on {self.url} is disconnected; state unknown") from None

        timeout = self.profile.status_timeout_s
        # Status bytes carry no sequence number, hence ``settle``.
        return self.replies.exchange(send, _first, timeout, f"printer on {self.url} did not answer a status "
                                     "request; state unknown", settle=timeout)

    def query_status(self) -> PrinterStatus:
        """Full status from DLE EOT 1..4; ``known=False`` if any part went unanswered."""
        try:
            s1, s2, s3, s4 = (self.status(n) for n in (1, 2, 3, 4))
        except DeviceTimeout:
            self.last_status = PrinterStatus(known=False)
            return self.last_status
        d1, d2, d3, d4 = (escpos.decode_status(n, v) for n, v in zip((1, 2, 3, 4), (s1, s2, s3, s4), strict=True))
        paper = "out" if d4["paper_end"] or d2["paper_end_stop"] else "low" if d4["paper_near_end"] else "ok"
        self.last_status = PrinterStatus(True, not d1["offline"], d2["cover_open"], paper,
                                         d3["cutter_error"], d3["unrecoverable_error"])
        return self.last_status

    def _asb_fault(self) -> str | None:
        with self._cond:
            a = self._asb
        if a is None:
            return None
        if a.paper_end:
            return "paper_out"
        if a.cover_open:
            return "cover_open"
        if a.cutter_error:
            return "cutter_error"
        if a.unrecoverable_error:
            return "unrecoverable_error"
        return None

    @staticmethod
    def _fault(st: PrinterStatus) -> str | None:
        if not st.known:
            return "not_answering"
        if st.paper == "out":
            return "paper_out"
        if st.cover_open:
            return "cover_open"
        if st.cutter_error:
            return "cutter_error"
        if st.unrecoverable_error:
            return "unrecoverable_error"
        if st.online is False:
            return "offline"
        return None

    # -- building the job ------------------------------------------------------------------------
    def render(self, receipt: Receipt) -> tuple[list[bytes], int, list[str]]:
        """This printer's job for ``receipt``: see ``render_receipt``."""
        return render_receipt(self.profile, receipt)

    # -- printing --------------------------------------------------------------------------------
    def print_receipt(self, receipt: Receipt) -> JobResult:
        job = JobResult(next(_job_ids), "failed")
        t0 = self.clock()
        try:
            segs, job.lines, job.warnings = self.render(receipt)
        except LocalProtocolError as exc:
            job.reason = f"bad_document: {exc}"
            return self._finish(job, t0)
        if job.warnings:
            log.warning("characters replaced", extra={"fields": {"job": job.job_id, "count": len(job.warnings)}})
        job.total_bytes = sum(map(len, segs))
        before = self.query_status()
        fault = self._fault(before)
        if fault:
            job.reason, job.refused = fault, fault != "not_answering"
            return self._finish(job, t0)
        if before.paper == "low":
            job.warnings.append("paper_low")
        with self._cond:
            self._asb = None  # only faults raised during this job count from here on
        chunk = self.profile.write_chunk_bytes
        try:
            for seg in segs:
                for i in range(0, len(seg), chunk):
                    fault = self._asb_fault()
                    if fault:
                        job.reason = fault
                        return self._finish(job, t0)
                    part = seg[i : i + chunk]
                    self._send(part)
                    job.bytes_sent += len(part)
            self.link.drain()
        except DeviceTimeout as exc:
            job.reason = "flow_control_stalled" if "XOFF" in str(exc) else "not_answering"
            return self._finish(job, t0)
        except TransportError:
            job.reason = "disconnected"
            return self._finish(job, t0)
        # The printer answers the final status only after it has processed the job's bytes.
        after = self.query_status()
        job.reason = self._asb_fault() or self._fault(after)
        if job.reason is None:
            job.status = "completed"
        return self._finish(job, t0)

    def _finish(self, job: JobResult, t0: float) -> JobResult:
        job.seconds = round(self.clock() - t0, 4)
        if job.status == "completed":
            self.counters["jobs_completed"] += 1
            self.counters["lines_printed"] += job.lines
            if job.total_bytes and job.bytes_sent == job.total_bytes:
                self.counters["cuts"] += 1
        else:
            self.counters["jobs_failed"] += 1
        log.info("print job", extra={"fields": {"job": job.job_id, "status": job.status, "reason": job.reason,
                                                "bytes": job.bytes_sent, "seconds": job.seconds}})
        return job

    def print_lines(self, lines: list[str], *, cut: bool = True) -> JobResult:
        """Print plain lines; raise :class:`DeviceError` naming the reason unless completed."""
        result = self.print_receipt(Receipt([TextLine(s) for s in lines], cut=cut))
        if not result.ok:
            reason = (result.reason or "failed").replace("_", " ")
            if result.reason == "not_answering":
                raise DeviceTimeout(f"printer on {self.url} did not answer; state unknown")
            raise DeviceError(f"printer {reason}")
        return result

    def test_print(self) -> JobResult:
        """External health check: a short self-identifying receipt."""
        p = self.profile
        return self.print_receipt(Receipt([
            TextLine("打印机自检 Printer self-test", align="center", bold=True),
            TextLine(f"profile {p.name} {p.dots_per_line} dots, {p.charset}"),
            TextLine("0123456789" * (p.chars_per_line // 10)),
            Barcode128("SELFTEST"),
        ]))
