"""`upgrade report [RUN] [-o DIR]`: a run as a self-contained HTML page and as Markdown for CI summaries."""

from __future__ import annotations

from pathlib import Path

import typer
from rich.text import Text

from orchestrator.adapters.state import state_store
from orchestrator.app.apply import Refused
from orchestrator.cli.app import app
from orchestrator.cli.apply_cmd import STATE_HELP
from orchestrator.cli.output import console
from orchestrator.errors import InputError, UpgradeError
from orchestrator.planner import Plan, load_plan
from orchestrator.report.build import build_report
from orchestrator.report.render import html_page, markdown


def _plan(path: str, override: Path | None) -> Plan | None:
    if override is not None:
        return load_plan(override)  # asked for by name: a bad one is an error
    try:
        return load_plan(path)
    except UpgradeError:  # moved or edited since the run: the report says what is missing
        return None


@app.command("report")
def report_cmd(
    run: str | None = typer.Argument(None, help="Run id (default: the latest)."),
    out: Path = typer.Option(Path("upgrade-report"), "-o", "--output-dir", help="Folder for the report files."),
    plan_path: Path | None = typer.Option(None, "--plan", help="The run's plan, if it moved since the run."),
    state: str | None = typer.Option(None, "--state", "--state-dir", help=STATE_HELP),
) -> None:
    """Write DIR/RUN.html (timeline, gates against baselines, failures, changes) and DIR/RUN.md (CI summary)."""
    store = state_store(state)
    if not store.exists():
        raise Refused([f"{store.where}: no journal yet (nothing applied here)"])
    with store.journal() as journal:
        record = journal.run(run) if run else journal.latest_run()
        if record is None:
            raise Refused([f"{store.where}: no runs"])
        report = build_report(journal, record.id, _plan(record.plan_path, plan_path))
    try:
        out.mkdir(parents=True, exist_ok=True)
        html_file, md_file = out / f"{record.id}.html", out / f"{record.id}.md"
        html_file.write_text(html_page(report), encoding="utf-8")
        md_file.write_text(markdown(report), encoding="utf-8")
    except OSError as exc:
        raise InputError(str(out), f"cannot write the report ({exc.strerror})") from None
    console.print(Text(f"{html_file}\n{md_file}"))
