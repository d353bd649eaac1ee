"""The run's timeline as SVG: one row per host (grouped by wave), each step a bar over time.

Bars are coloured by what the step was for and how it ended (upgrade, rollback, failed, still running);
every bar carries a ``<title>`` (shown on hover) with the step, its duration and its message. All text is
escaped: host names and messages are data.
"""

from __future__ import annotations

from datetime import datetime
from html import escape

from orchestrator.app.view import StepSpan
from orchestrator.report.build import Report

LABEL_W = 170
CHART_W = 900
ROW_H = 18
TOP = 34
COLORS = {"upgrade": "#4e79a7", "rollback": "#f28e2b", "failed": "#e15759", "running": "#bab0ac"}
TICKS = (1, 2, 5, 10, 15, 30, 60, 120, 300, 600, 900, 1800, 3600, 7200, 10800, 21600, 43200, 86400)


def duration(seconds: float) -> str:
    seconds = max(0, round(seconds))
    hours, rest = divmod(seconds, 3600)
    return f"{hours}:{rest // 60:02d}:{rest % 60:02d}" if hours else f"{rest // 60}:{rest % 60:02d}"


def _colour(span: StepSpan) -> str:
    if span.ok is None:
        return COLORS["running"]
    if not span.ok:
        return COLORS["failed"]
    return COLORS["rollback" if span.phase == "rollback" else "upgrade"]


def timeline_svg(report: Report) -> str:
    """An SVG element (no XML prologue: it is inlined in the HTML page)."""
    rows: list[tuple[str, str]] = []  # (kind, text): "wave" label rows and "host" rows
    for wave in report.waves:
        rows.append(("wave", wave.name))
        rows += [("host", h) for h in wave.hosts]
    height = TOP + ROW_H * len(rows) + 10
    width = LABEL_W + CHART_W + 20
    start = report.start
    end = report.end or start
    out = [f'<svg xmlns="http://www.w3.org/2000/svg" class="timeline" width="{width}" height="{height}" '
           f'viewBox="0 0 {width} {height}" role="img" aria-label="timeline of the run">',
           '<style>text{font:11px sans-serif;fill:#222}.wave{font-weight:bold}.tick{fill:#666}</style>']
    if start is None or end is None:
        out.append(f'<text x="4" y="{TOP}">no events yet</text></svg>')
        return "\n".join(out)
    span_s = max(1.0, (end - start).total_seconds())
    step_s = next((t for t in TICKS if span_s / t <= 10), TICKS[-1])

    def x(at: datetime) -> float:
        return LABEL_W + (at - start).total_seconds() / span_s * CHART_W

    tick = 0
    while tick <= span_s:
        tx = LABEL_W + tick / span_s * CHART_W
        out.append(f'<line x1="{tx:.1f}" y1="{TOP - 6}" x2="{tx:.1f}" y2="{height - 6}" stroke="#e3e3e3"/>')
        out.append(f'<text class="tick" x="{tx:.1f}" y="{TOP - 10}" text-anchor="middle">+{duration(tick)}</text>')
        tick += step_s
    out.append(f'<text class="tick" x="4" y="{TOP - 10}">{escape(start.strftime("%Y-%m-%d %H:%M:%S %Z"))}</text>')
    hosts = {h.name: h for h in report.hosts}
    for i, (kind, name) in enumerate(rows):
        y = TOP + i * ROW_H
        if kind == "wave":
            out.append(f'<text class="wave" x="4" y="{y + 13}">wave {escape(name)}</text>')
            ended = next((w.ended for w in report.waves if w.name == name), None)
            if ended is not None:
                ex = x(ended)
                out.append(f'<line x1="{ex:.1f}" y1="{y}" x2="{ex:.1f}" y2="{y + ROW_H}" stroke="#555" '
                           f'stroke-dasharray="3,2"><title>wave {escape(name)} ended</title></line>')
            continue
        host = hosts[name]
        out.append(f'<text x="14" y="{y + 13}">{escape(name[:26])}<title>{escape(name)}: {escape(host.state)}'
                   f'</title></text>')
        for span in host.steps:
            x0 = x(span.start)
            x1 = x(span.end or end)
            what = "running" if span.ok is None else ("ok" if span.ok else "failed")
            took = duration(((span.end or end) - span.start).total_seconds())
            tip = f"{name} {span.step} ({span.phase}): {what}, {took}"
            if span.message:
                tip += f" - {span.message}"
            out.append(f'<rect x="{x0:.1f}" y="{y + 3}" width="{max(1.5, x1 - x0):.1f}" height="{ROW_H - 6}" '
                       f'fill="{_colour(span)}" stroke="#fff" stroke-width="0.6" data-step="{escape(span.step)}">'
                       f'<title>{escape(tip)}</title></rect>')
    out.append("</svg>")
    return "\n".join(out)
