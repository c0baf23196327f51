"""Receipt printer driver: ESC/POS over a serial port opened through the transport seam."""

from __future__ import annotations

import logging

from device_drivers import escpos
from device_drivers.transport import open_port, wire_time
from provisioning.errors import DeviceError, DeviceTimeout, TransportError

log = logging.getLogger(__name__)


class ReceiptPrinter:
    def __init__(self, url: str, baudrate: int = 115200) -> None:
        self.url = url
        self.baudrate = baudrate
        self.port = open_port(url, baudrate, timeout=0.5)

    def close(self) -> None:
        self.port.close()

    def _write(self, data: bytes) -> None:
        try:
            self.port.write(data)
            self.port.flush()
        except OSError as exc:
            raise TransportError(f"printer on {self.url} write failed: {exc}") from None

    def status(self, n: int) -> int:
        """One real-time status byte (DLE EOT n); no answer means unknown, never fine."""
        self.port.reset_input_buffer()
        self._write(bytes([escpos.DLE, 0x04, n]))
        reply = self.port.read(1)
        if not reply:
            raise DeviceTimeout(f"printer on {self.url} did not answer a status request; state unknown")
        return reply[0]

    def print_lines(self, lines: list[str], *, cut: bool = True) -> None:
        """Print ``lines`` in Chinese mode (GB18030), then cut. Refused when paper is out."""
        paper = self.status(4)
        if paper & 0x60:
            raise DeviceError("printer paper out")
        job = bytearray(escpos.INIT + escpos.CHINESE_ON)
        for s in lines:
            job += escpos.line(s)
        if cut:
            job += escpos.cut(partial=True)
        self._write(bytes(job))
        log.info("printed", extra={"fields": {"lines": len(lines), "bytes": len(job),
                                              "wire_s": round(wire_time(len(job), self.baudrate), 3)}})
