"""Charts as SVG images written by hand: bar charts and line charts for pages and printable reports.

SVG keeps charts sharp when printed and needs no plotting library; every label is escaped.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from html import escape

W, H = 640, 260
PAD_L, PAD_R, PAD_T, PAD_B = 48, 16, 28, 56
COLORS = ("#1f6feb", "#d97706", "#15803d", "#b91c1c", "#7c3aed", "#0e7490")


def _nice_max(v: float) -> float:
    if v <= 0:
        return 1.0
    step = 10 ** len(str(int(v))) / 10
    for m in (1, 2, 2.5, 5, 10):
        if v <= m * step:
            return m * step
    return v


def _frame(title: str, ymax: float, body: list[str], unit: str = "") -> str:
    grid = []
    for i in range(5):
        y = PAD_T + (H - PAD_T - PAD_B) * i / 4
        val = ymax * (1 - i / 4)
        label = f"{val:.0f}" if ymax >= 10 else f"{val:.2g}"
        grid.append(f'<line x1="{PAD_L}" y1="{y:.1f}" x2="{W - PAD_R}" y2="{y:.1f}" stroke="#e5e7eb"/>'
                    f'<text x="{PAD_L - 6}" y="{y + 4:.1f}" text-anchor="end" font-size="11">{label}{unit}</text>')
    return (f'<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {W} {H}" width="{W}" height="{H}" '
            f'role="img" aria-label="{escape(title)}" class="chart" font-family="sans-serif">'
            f'<title>{escape(title)}</title>'
            f'<text x="{PAD_L}" y="18" font-size="13" font-weight="bold">{escape(title)}</text>'
            + "".join(grid) + "".join(body) + "</svg>")


def bar_chart(title: str, items: Sequence[tuple[str, float]], *, unit: str = "", ymax: float | None = None) -> str:
    items = list(items)[:24]
    top = ymax or _nice_max(max((v for _, v in items), default=0))
    plot_w, plot_h = W - PAD_L - PAD_R, H - PAD_T - PAD_B
    body = []
    n = max(1, len(items))
    slot = plot_w / n
    for i, (label, value) in enumerate(items):
        h = plot_h * min(value, top) / top
        x = PAD_L + i * slot + slot * 0.15
        y = PAD_T + plot_h - h
        body.append(f'<rect x="{x:.1f}" y="{y:.1f}" width="{slot * 0.7:.1f}" height="{h:.1f}" '
                    f'fill="{COLORS[0]}"><title>{escape(label)}: {value:g}{unit}</title></rect>')
        body.append(f'<text x="{x + slot * 0.35:.1f}" y="{y - 3:.1f}" text-anchor="middle" font-size="10">'
                    f'{value:g}</text>')
        short = label if len(label) <= 12 else label[:11] + "…"
        body.append(f'<text x="{x + slot * 0.35:.1f}" y="{H - PAD_B + 14}" text-anchor="middle" font-size="10" '
                    f'transform="rotate(20 {x + slot * 0.35:.1f} {H - PAD_B + 14})">{escape(short)}</text>')
    return _frame(title, top, body, unit)


def line_chart(title: str, series: Mapping[str, Sequence[tuple[float, float]]], *, unit: str = "",
               ymax: float | None = None, xlabels: Sequence[str] = ()) -> str:
    """``series`` maps a name to (x, y) points; x is any increasing number (a time stamp)."""
    pts = [p for s in series.values() for p in s]
    top = ymax or _nice_max(max((y for _, y in pts), default=0))
    xs = [x for x, _ in pts]
    x0, x1 = (min(xs), max(xs)) if xs else (0, 1)
    span = (x1 - x0) or 1
    plot_w, plot_h = W - PAD_L - PAD_R, H - PAD_T - PAD_B
    body = []
    for i, (name, points) in enumerate(series.items()):
        color = COLORS[i % len(COLORS)]
        coords = " ".join(f"{PAD_L + plot_w * (x - x0) / span:.1f},{PAD_T + plot_h * (1 - min(y, top) / top):.1f}"
                          for x, y in points)
        if coords:
            body.append(f'<polyline fill="none" stroke="{color}" stroke-width="2" points="{coords}"/>')
        if len(points) <= 40:  # few samples: mark each, so a single one is visible at all
            for pt in coords.split():
                x, y = pt.split(",")
                body.append(f'<circle cx="{x}" cy="{y}" r="3" fill="{color}"/>')
        body.append(f'<text x="{PAD_L + 8 + 110 * i}" y="{H - 8}" font-size="11" fill="{color}">'
                    f'■ {escape(name)}</text>')
    for j, lab in enumerate(xlabels):
        x = PAD_L + plot_w * j / max(1, len(xlabels) - 1)
        body.append(f'<text x="{x:.1f}" y="{H - PAD_B + 14}" text-anchor="middle" font-size="10">{escape(lab)}</text>')
    return _frame(title, top, body, unit)


def telemetry_charts(samples: list[dict], hm: Callable[[float], str], label: Callable[[str], str]) -> list[str]:
    """CPU, memory, disk (percent) and temperature over time for one kiosk; ``hm`` labels the
    first and last sample's time (the fleet clock's ``hm``, so the axis reads in the fleet's zone),
    ``label`` gives the page language's text of a catalogue key (the console's translator)."""
    if not samples:
        return []
    samples = sorted(samples, key=lambda s: s.get("ts", 0))
    pct = {label(f"telemetry.{k}"): [(s["ts"], float(s[k])) for s in samples if isinstance(s.get(k), int | float)]
           for k in ("cpu", "memory", "disk")}
    temp = {"°C": [(s["ts"], float(s["temperature"])) for s in samples
                   if isinstance(s.get("temperature"), int | float)]}
    first, last = samples[0].get("ts", 0), samples[-1].get("ts", 0)
    labels = [hm(first), hm(last)]
    out = [line_chart(label("telemetry.load_chart"), pct, ymax=100, xlabels=labels)]
    if temp["°C"]:
        out.append(line_chart(label("telemetry.temperature_chart"), temp, xlabels=labels))
    return out
