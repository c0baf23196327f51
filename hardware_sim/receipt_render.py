"""Render a simulated receipt as a PNG that looks like the paper: thermal-white background, CJK
text in the printer's font grid, QR codes, raster logos, barcodes with their human-readable text.
"""

from __future__ import annotations

from pathlib import Path

from PIL import Image, ImageDraw, ImageFont

FONT_CANDIDATES = (
    "/usr/share/fonts/truetype/wqy/wqy-microhei.ttc",
    "/usr/share/fonts/opentype/noto/NotoSansCJK-Regular.ttc",
    "/usr/share/fonts/noto-cjk/NotoSansCJK-Regular.ttc",
    "/usr/share/fonts/truetype/droid/DroidSansFallbackFull.ttf",
)
_fonts: dict[int, ImageFont.FreeTypeFont | ImageFont.ImageFont] = {}


def _font(px: int):
    if px not in _fonts:
        for path in FONT_CANDIDATES:
            if Path(path).exists():
                _fonts[px] = ImageFont.truetype(path, px)
                break
        else:  # no CJK font: Latin still renders, Chinese shows as boxes
            _fonts[px] = ImageFont.load_default()
    return _fonts[px]


def warm_up() -> None:
    """Load the fonts and the QR library once, at start-up."""
    for px in (24, 20, 48):
        _font(px)
    import qrcode  # noqa: F401


def _place(img_w: int, item_w: int, align: str) -> int:
    if align == "center":
        return max(0, (img_w - item_w) // 2)
    if align == "right":
        return max(0, img_w - item_w)
    return 0


def _qr_image(data: bytes, module: int) -> Image.Image:
    import qrcode
    from qrcode.constants import ERROR_CORRECT_M

    q = qrcode.QRCode(border=1, box_size=module, error_correction=ERROR_CORRECT_M)
    q.add_data(data)
    q.make(fit=True)
    return q.make_image(fill_color="black", back_color="white").get_image().convert("L")


def _modules(data: bytes, system: int) -> str:
    """The bar/space modules of the code: real Code128/Code39 patterns when python-barcode is
    installed (it comes with python-escpos), else a schematic pattern of the data bits."""
    text = data.decode("ascii", "replace")
    try:
        from barcode.codex import Code39, Code128

        if system in (69, 4):
            return Code39(text, add_checksum=False).build()[0]
        return Code128(text).build()[0]
    except Exception:  # noqa: BLE001 - optional library, or data it refuses: fall back to a sketch
        return "".join(f"{b:08b}" for b in b"\x69" + data + b"\x6a")


def _barcode_image(data: bytes, height: int, system: int = 73) -> Image.Image:
    bits = _modules(data, system)
    w = len(bits) * 2 + 20
    img = Image.new("L", (w, height + 26), 255)
    d = ImageDraw.Draw(img)
    for i, bit in enumerate(bits):
        if bit == "1":
            d.rectangle([10 + i * 2, 0, 10 + i * 2 + 1, height], fill=0)
    text = data.decode("ascii", "replace")
    f = _font(20)
    tw = d.textlength(text, font=f)
    d.text(((w - tw) / 2, height + 2), text, fill=0, font=f)
    return img


def _raster_image(width_bytes: int, height: int, data: bytes) -> Image.Image:
    img = Image.frombytes("1", (width_bytes * 8, height), bytes(b ^ 0xFF for b in data))
    return img.convert("L")


def render(blocks: list[tuple], width_dots: int = 576) -> Image.Image:
    """``blocks``: ("text", str, align, bold, w, h) | ("qr", bytes, align, module) |
    ("barcode", bytes, align, height) | ("raster", wb, h, bytes, align)."""
    base = 24 if width_dots >= 576 else 20
    parts: list[tuple[Image.Image, str]] = []
    for b in blocks:
        kind = b[0]
        if kind == "text":
            _, s, align, bold, w, h = b
            f = _font(base * h)
            line = Image.new("L", (width_dots, base * h + 6), 255)
            d = ImageDraw.Draw(line)
            tw = int(d.textlength(s, font=f) * w / h) if s else 0
            tmp = Image.new("L", (max(1, int(d.textlength(s, font=f)) + 2), base * h + 6), 255)
            td = ImageDraw.Draw(tmp)
            td.text((0, 2), s, fill=0, font=f, stroke_width=1 if bold else 0, stroke_fill=0)
            if w != h:
                tmp = tmp.resize((max(1, tw), tmp.height))
            line.paste(tmp.crop((0, 0, min(tmp.width, width_dots), tmp.height)), (_place(width_dots, tw, align), 0))
            parts.append((line, "left"))
        elif kind == "qr":
            parts.append((_qr_image(b[1], b[3]), b[2]))
        elif kind == "barcode":
            _, data, align, height, *rest = b  # the barcode system is optional
            parts.append((_barcode_image(data, height, rest[0] if rest else 73), align))
        elif kind == "raster":
            parts.append((_raster_image(b[1], b[2], b[3]), b[4]))
    margin = 16
    height = sum(p.height for p, _ in parts) + 2 * margin + 40
    paper = Image.new("L", (width_dots, height), 255)
    y = margin
    for p, align in parts:
        if p.width > width_dots:
            p = p.crop((0, 0, width_dots, p.height))
        paper.paste(p, (_place(width_dots, p.width, align), y))
        y += p.height
    # The torn/cut edge at the bottom.
    d = ImageDraw.Draw(paper)
    for x in range(0, width_dots, 12):
        d.polygon([(x, height), (x + 6, height - 8), (x + 12, height)], fill=200)
    return paper.convert("RGB")
