"""A run's report as one self-contained HTML page (inline CSS and SVG, nothing fetched) and as Markdown for
CI summaries (GitHub's job summary, GitLab's merge request notes).

Every piece of host or user text goes through ``escape`` (HTML) or ``md`` (Markdown): it is data, never markup.
"""

from __future__ import annotations

from datetime import datetime
from html import escape

from orchestrator.report.build import GateRow, HostReport, Report
from orchestrator.report.timeline import COLORS, duration, timeline_svg

CSS = """
body{font:14px/1.4 system-ui,sans-serif;margin:24px;color:#222;max-width:1200px}
h1{font-size:20px}h2{font-size:16px;margin-top:28px;border-bottom:1px solid #ddd}
table{border-collapse:collapse;margin:8px 0}th,td{border:1px solid #ddd;padding:3px 8px;text-align:left;
vertical-align:top}th{background:#f4f4f4}.num{text-align:right;font-variant-numeric:tabular-nums}
.done,.passed{color:#1b7a2e}.rolled_back{color:#b36b00}.quarantined,.halted,.failed{color:#c0262d;font-weight:bold}
.legend span{display:inline-block;width:12px;height:12px;margin:0 4px 0 12px;vertical-align:middle}
.note{color:#666}
"""


def _when(at: datetime | None) -> str:
    return at.strftime("%Y-%m-%d %H:%M:%S %Z") if at else "-"


def _ratio(row: GateRow) -> str:
    ref = row.baseline if row.baseline is not None else row.median
    return f"{row.value / ref:.0%}" if ref else "-"


def _figure(value: float | None) -> str:
    return f"{value:.2f}" if value is not None else "-"


def html_page(report: Report) -> str:
    run = report.run
    took = duration((report.end - report.start).total_seconds()) if report.start and report.end else "-"
    e = escape
    out = ["<!DOCTYPE html>", '<html lang="en"><head><meta charset="utf-8">',
           f"<title>upgrade run {e(run.id)}: {e(run.status)}</title>", f"<style>{CSS}</style></head><body>",
           f'<h1>Run {e(run.id)}: <span class="{e(run.status)}">{e(run.status)}</span></h1>',
           "<table>",
           f"<tr><th>plan</th><td>{e(run.plan_path)} (hash {e(run.plan_hash[:12])})</td></tr>",
           f"<tr><th>started</th><td>{e(_when(report.start))}</td></tr>",
           f"<tr><th>last event</th><td>{e(_when(report.end))} (took {took})</td></tr>",
           f"<tr><th>waves</th><td>{e(', '.join(w.name for w in report.waves))}</td></tr>",
           f"<tr><th>hosts</th><td>{e(_tally(report.hosts))}</td></tr>"]
    reason = (run.summary or {}).get("reason")
    if reason:
        out.append(f"<tr><th>reason</th><td>{e(str(reason))}</td></tr>")
    out.append("</table>")
    out += [f'<p class="note">{e(n)}</p>' for n in report.notes]
    out.append("<h2>Timeline</h2>")
    out.append('<p class="legend">' + "".join(f'<span style="background:{c}"></span>{k}' for k, c in COLORS.items())
               + " (hover a bar for the step, its time and its message; dashed: a wave ended)</p>")
    out.append(timeline_svg(report))
    out.append("<h2>Waves and gates</h2>")
    for wave in report.waves:
        why = f" ({e(wave.reason)})" if wave.reason else ""
        out.append(f'<h3>wave {e(wave.name)}: <span class="{e(wave.status)}">{e(wave.status)}</span>{why}: '
                   f"{len(wave.hosts)} hosts, {wave.failed} failed of a budget of {wave.failure_budget}</h3>")
        if not wave.gates:
            out.append('<p class="note">no gate figures reported</p>')
            continue
        out.append(f"<table><tr><th>host</th><th>GPU</th><th>{e(report.metric)}</th><th>baseline</th>"
                   "<th>wave median (same GPU)</th><th>against baseline, else median</th><th>straggler</th></tr>")
        for g in wave.gates:
            baseline = "- (this figure is now its baseline)" if g.new_baseline else _figure(g.baseline)
            out.append(f"<tr><td>{e(g.host)}</td><td>{e(g.gpu)}</td><td class=num>{_figure(g.value)}</td>"
                       f"<td class=num>{e(baseline)}</td><td class=num>{_figure(g.median)}</td>"
                       f"<td class=num>{_ratio(g)}</td><td>{e('; '.join(g.straggler))}</td></tr>")
        out.append("</table>")
    out.append("<h2>Failures</h2>")
    if not report.failures:
        out.append("<p>none</p>")
    else:
        out.append("<table><tr><th>host</th><th>wave</th><th>ended</th><th>reason</th><th>failed steps</th></tr>")
        for h in report.failures:
            steps = "<br>".join(f"{e(s.step)} ({e(s.phase)}): {e(s.message)}" for s in h.failed_steps)
            out.append(f'<tr><td>{e(h.name)}</td><td>{e(h.wave)}</td><td class="{e(h.state)}">{e(h.state)}</td>'
                       f"<td>{e(h.reason)}</td><td>{steps}</td></tr>")
        out.append("</table>")
    out.append("<h2>What changed on each host</h2>")
    out.append("<table><tr><th>host</th><th>pool</th><th>GPU</th><th>state</th><th>component</th><th>before</th>"
               "<th>after</th><th>from</th></tr>")
    for h in report.hosts:
        out += _change_rows(h)
    out.append("</table></body></html>")
    return "\n".join(out) + "\n"


def _change_rows(h: HostReport) -> list[str]:
    e = escape
    head = f'<td>{e(h.name)}</td><td>{e(h.pool)}</td><td>{e(h.gpu)}</td><td class="{e(h.state)}">{e(h.state)}</td>'
    if not h.changes:
        return [f'<tr>{head}<td colspan="4" class="note">nothing changed</td></tr>']
    return [f"<tr>{head if i == 0 else '<td></td>' * 4}<td>{e(c.component)}</td><td>{e(c.before)}</td>"
            f"<td>{e(c.after)}</td><td>{e(c.source)}</td></tr>" for i, c in enumerate(h.changes)]


def _tally(hosts: list[HostReport]) -> str:
    counts: dict[str, int] = {}
    for h in hosts:
        counts[h.state] = counts.get(h.state, 0) + 1
    return ", ".join(f"{n} {s}" for s, n in sorted(counts.items())) or "none"


_MD_SPECIAL = set("\\`*_[]|~")  # what changes meaning inside a table cell


def md(text: str) -> str:
    """Host text in Markdown as data: punctuation backslash-escaped, angle brackets and newlines made harmless."""
    out = "".join("\\" + c if c in _MD_SPECIAL else c for c in text)
    return out.replace("<", "&lt;").replace(">", "&gt;").replace("\r", " ").replace("\n", " ")


def markdown(report: Report) -> str:
    run = report.run
    lines = [f"## Run {md(run.id)}: {md(run.status)}", "",
             f"plan `{run.plan_hash[:12]}`, started {md(_when(report.start))}, hosts: {md(_tally(report.hosts))}", ""]
    reason = (run.summary or {}).get("reason")
    if reason:
        lines += [f"reason: {md(str(reason))}", ""]
    lines += ["| wave | status | hosts | failed / budget | gate figures (host: figure / baseline) |",
              "| --- | --- | --- | --- | --- |"]
    for w in report.waves:
        gates = ", ".join(f"{md(g.host)}: {_figure(g.value)} / {_figure(g.baseline)}" for g in w.gates) or "-"
        lines.append(f"| {md(w.name)} | {md(w.status)} | {len(w.hosts)} | {w.failed} / {w.failure_budget} | "
                     f"{gates} |")
    lines.append("")
    if report.failures:
        lines += ["### Failures", "", "| host | wave | ended | reason |", "| --- | --- | --- | --- |"]
        lines += [f"| {md(h.name)} | {md(h.wave)} | {md(h.state)} | {md(h.reason)} |" for h in report.failures]
        lines.append("")
    changed = [h for h in report.hosts if h.changes]
    if changed:
        lines += ["### Changed", "", "| host | changes |", "| --- | --- |"]
        lines += [f"| {md(h.name)} | " + ", ".join(f"{md(c.component)} {md(c.before)} → {md(c.after)}"
                                                  for c in h.changes) + " |" for h in changed]
        lines.append("")
    return "\n".join(lines)
