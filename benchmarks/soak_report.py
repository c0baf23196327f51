"""The soak's report (benchmarks/soak.py): ``report.md`` with the seed, the faults, each named
invariant and its failures, and three plots drawn as plain SVG (no plotting library needed):
``timeline.svg`` (faults and each kiosk's state in the controller over time), ``latency.svg``
(each command's time from issue to its final state, and each broker/controller fault's time
until every kiosk was online again, over the soak's time) and ``resources.svg`` (resident memory
of the controller and the broker)."""

from __future__ import annotations

from collections import Counter
from html import escape
from typing import Any

from benchmarks.soak_checks import recovery, recovery_times
from benchmarks.soak_faults import GLOBAL_FAULTS, KIOSK_FAULTS

COLOURS = {"link_cut": "#d62728", "link_slow": "#ff7f0e", "half_open": "#9467bd", "kiosk_kill": "#8c564b",
           "broker_restart": "#1f77b4", "controller_kill": "#17becf", "host_power_cycle": "#e377c2",
           "clock_step": "#7f7f7f", "disk_full": "#bcbd22"}
DEVICE_COLOUR = "#2ca02c"  # printer and supervisor faults
STATE_COLOURS = {"online": "#c7e9c0", "offline": "#fcbba1", "stale": "#fdd0a2"}


def _timeline(soak) -> str:
    width, left, row = 900, 90, 12
    rows = ["broker", "controller", *soak.ids[:40]]
    height = 30 + row * len(rows) + 20
    scale = (width - left - 10) / max(soak.duration, 1)
    out = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" font-size="9" '
           f'font-family="sans-serif">', f'<text x="4" y="12">seed {soak.seed}: faults (bars) and kiosk state '
           f'in the controller (background), seconds</text>']
    for i, name in enumerate(rows):
        y = 20 + i * row
        out.append(f'<text x="4" y="{y + 9}">{escape(name)}</text>')
        changes = soak.states.get(name, [])
        for j, (t, state) in enumerate(changes):
            end = changes[j + 1][0] if j + 1 < len(changes) else soak.duration
            out.append(f'<rect x="{left + t * scale:.1f}" y="{y}" width="{max(0.5, (end - t) * scale):.1f}" '
                       f'height="{row - 2}" fill="{STATE_COLOURS.get(state, "#ddd")}"/>')
        for f in soak.faults:
            if f.target == name:
                end = f.end or soak.duration
                out.append(f'<rect x="{left + f.start * scale:.1f}" y="{y + 3}" '
                           f'width="{max(1.5, (end - f.start) * scale):.1f}" height="{row - 8}" '
                           f'fill="{COLOURS.get(f.kind, DEVICE_COLOUR)}"><title>{f.kind} {f.start:.1f}-{end:.1f} s'
                           f'</title></rect>')
    y = height - 6
    for k in range(0, int(soak.duration) + 1, max(10, int(soak.duration / 10))):
        out.append(f'<text x="{left + k * scale:.1f}" y="{y}">{k}</text>')
    out.append("</svg>")
    return "\n".join(out)


def _resources(soak) -> str:
    width, height, left = 900, 240, 50
    out = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" font-size="10" '
           f'font-family="sans-serif">', '<text x="4" y="12">resident memory (MiB) over time (s)</text>']
    top = max((s[1] for v in soak.resources.values() for s in v), default=1.0) * 1.1
    sx = (width - left - 10) / max(soak.duration, 1)
    sy = (height - 40) / top
    for i, (name, samples) in enumerate(sorted(soak.resources.items())):
        colour = ("#1f77b4", "#d62728", "#2ca02c")[i % 3]
        pts = " ".join(f"{left + t * sx:.1f},{height - 20 - rss * sy:.1f}" for t, rss, _fd, _pid in samples)
        out.append(f'<polyline fill="none" stroke="{colour}" points="{pts}"/>')
        out.append(f'<text x="{left + 10 + 120 * i}" y="28" fill="{colour}">{escape(name)}</text>')
    out.append(f'<text x="4" y="{height - 20}">0</text><text x="4" y="40">{top:.0f}</text></svg>')
    return "\n".join(out)


LATENCY_COLOURS = {"succeeded": "#2ca02c", "recovery": "#1f77b4"}  # any other final state: red


def _latency_points(soak) -> list[tuple[float, float, str]]:
    """(soak time, seconds, kind): commands from the controller's store (wall-clock stamps, placed
    on the soak's time line through its wall-clock start) and the recovery after each outage."""
    points = []
    conn = soak.store()
    if conn is not None:
        try:
            rows = conn.execute("SELECT issued_at, finished_at, status FROM commands "
                                "WHERE finished_at IS NOT NULL").fetchall()
        finally:
            conn.close()
        points += [(issued - soak.wall0, finished - issued, status) for issued, finished, status in rows]
    points += [(f.end, worst, "recovery") for f, worst in recovery_times(soak) if worst != float("inf")]
    return points


def _latency(soak) -> str:
    width, height, left = 900, 240, 50
    points = _latency_points(soak)
    top = max((y for _, y, _ in points), default=1.0) * 1.1 or 1.0
    sx, sy = (width - left - 10) / max(soak.duration, 1), (height - 40) / top
    out = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" font-size="10" '
           f'font-family="sans-serif">', '<text x="4" y="12">seconds: command issued -> final (green '
           'succeeded, red other), every kiosk online again after a broker/controller outage (blue), '
           'over soak time (s)</text>']
    for x, y, kind in points:
        colour = LATENCY_COLOURS.get(kind, "#d62728")
        out.append(f'<circle cx="{left + max(0.0, x) * sx:.1f}" cy="{height - 20 - y * sy:.1f}" r="2.5" '
                   f'fill="{colour}"><title>{escape(kind)} at {x:.1f} s: {y:.2f} s</title></circle>')
    out.append(f'<text x="4" y="{height - 20}">0</text><text x="4" y="40">{top:.1f}</text></svg>')
    return "\n".join(out)


def write_report(soak, results: dict[str, dict[str, Any]]) -> None:
    (soak.out / "timeline.svg").write_text(_timeline(soak), encoding="utf-8")
    (soak.out / "resources.svg").write_text(_resources(soak), encoding="utf-8")
    (soak.out / "latency.svg").write_text(_latency(soak), encoding="utf-8")
    kinds = Counter(f.kind for f in soak.faults)
    lines = [
        "# Soak report", "",
        f"Seed **{soak.seed}** (replay: `benchmarks/soak.py --seed {soak.seed} --kiosks {soak.kiosks} "
        f"--duration {soak.duration:g} --speed {soak.speed:g}"
        f"{f' --fault-every {soak.fault_every:g}' if soak.fault_every else ''}"
        f"{' --kinds ' + ','.join(soak.kinds) if set(soak.kinds) != set(KIOSK_FAULTS + GLOBAL_FAULTS) else ''}`). {soak.kiosks} kiosks, {soak.duration:g} s at "
        f"speed {soak.speed:g} (telemetry {soak.telemetry:g} s, keepalive {soak.keepalive} s, offline bound "
        f"{soak.bound:g} s).", "",
        "Faults: " + (", ".join(f"{k} x{n}" for k, n in sorted(kinds.items())) or "none") +
        f"; commands queued: {len(soak.commands)}.", "",
        "| check | result | judged | notes |", "|---|---|---|---|",
    ]
    for name, r in results.items():
        lines.append(f"| `{name}` | {'PASS' if r['ok'] else '**FAIL**'} | {r['judged']} | "
                     f"{'; '.join(r['notes'][:3]).replace('|', '/')} |")
    for name, r in results.items():
        if r["failures"] or len(r["notes"]) > 3:
            lines += ["", f"## {name}", ""] + [f"- FAIL: {x}" for x in r["failures"]] + [f"- {x}" for x in r["notes"]]
    lines += ["", "## Recovery", ""] + [f"- {x}" for x in recovery(soak)]
    lines += ["", "## Faults", "", "| t (s) | until | fault | target | what happened |", "|---|---|---|---|---|"]
    lines += [f"| {f.start:.1f} | {f.end:.1f} | {f.kind} | {f.target} | {f.note.replace('|', '/')} |"
              for f in soak.faults]
    lines += ["", "![timeline](timeline.svg)", "", "![latency](latency.svg)", "",
              "![resources](resources.svg)", ""]
    (soak.out / "report.md").write_text("\n".join(lines), encoding="utf-8")
