"""`upgrade knowledge show | import`: what the knowledge base knows, and updating it from NVIDIA's manifests."""

from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path
from typing import Any

import typer
import yaml

from orchestrator.cli.app import app
from orchestrator.cli.output import Exit, OutputFormat, console, err_console, print_json
from orchestrator.knowledge import Knowledge, KnowledgeError, load_knowledge
from orchestrator.knowledge.facts import SiteFacts
from orchestrator.knowledge.manifests import additions, merged_site, parse_manifest
from orchestrator.loading import validate

knowledge_app = typer.Typer(
    help="The compatibility knowledge base: show what it knows, update it from NVIDIA's release manifests.",
    no_args_is_help=True,
)
app.add_typer(knowledge_app, name="knowledge")


def summary(k: Knowledge) -> dict[str, Any]:
    """Version, date, newest CUDA and newest driver branch: what `show` prints and CI can compare."""
    cuda, branch = k.newest_cuda(), k.newest_branch()
    return {
        "knowledge_version": k.version,
        "date": k.date,
        "site_file": k.override_file,
        "newest_cuda": None if cuda is None else {
            "version": str(cuda.version), "label": cuda.label, "driver": cuda.requirement(), "source": cuda.source
        },
        "newest_branch": None if branch is None else {
            "branch": branch.branch, "kind": branch.kind, "end_of_life": branch.end_of_life, "source": branch.source
        },
        "counts": {
            "cuda_releases": len(k.cuda.releases),
            "driver_branches": len(k.drivers.branches),
            "cudnn_releases": len(k.libraries.cudnn),
            "nccl_releases": len(k.libraries.nccl),
            "framework_builds": len(k.libraries.frameworks),
            "os_tables": len(k.os.cuda) + len(k.os.drivers),
        },
        "conflicts": [c.describe() for c in k.conflicts],
    }


@knowledge_app.command("show")
def show(
    site: Path | None = typer.Option(None, "--site", help="Site facts file to load on top of the shipped facts."),
    output: OutputFormat = typer.Option(OutputFormat.TABLE, "--output", help="table for people, json for CI."),
) -> None:
    """Print the knowledge version, its date, the newest CUDA release and driver branch it knows."""
    data = summary(load_knowledge(site))
    if output == OutputFormat.JSON:
        print_json(data)
        return
    cuda, branch = data["newest_cuda"], data["newest_branch"]
    lines = [
        f"knowledge {data['knowledge_version']} (facts as of {data['date']})"
        + (f", site file {data['site_file']}" if data["site_file"] else ""),
        f"newest CUDA: {cuda['label']} ({cuda['version']}), driver {cuda['driver']}" if cuda else "newest CUDA: none",
        f"newest driver branch: R{branch['branch']}"
        + (f" {branch['kind']}" if branch["kind"] else "")
        + (f", end of life {branch['end_of_life']}" if branch["end_of_life"] else "")
        if branch
        else "newest driver branch: none",
        ", ".join(f"{v} {k.replace('_', ' ')}" for k, v in data["counts"].items()),
    ]
    for line in lines:
        console.print(line, markup=False)
    for conflict in data["conflicts"]:
        err_console.print(f"conflict: {conflict}", markup=False)


def _read_manifest(path: Path) -> object:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise KnowledgeError(str(path), f"cannot read manifest ({exc.strerror})") from exc
    except json.JSONDecodeError as exc:
        raise KnowledgeError(str(path), f"not JSON (line {exc.lineno}: {exc.msg})") from exc


def _read_site(path: Path) -> dict[str, Any]:
    if not path.exists():
        return {}
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    except (OSError, yaml.YAMLError) as exc:
        raise KnowledgeError(str(path), f"cannot read the site file ({exc})") from exc
    if not isinstance(data, dict):
        raise KnowledgeError(str(path), "not a site facts file (expected a mapping)")
    return data


def _write_atomically(path: Path, text: str) -> None:
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent or Path("."))
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            fh.write(text)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


@knowledge_app.command("import")
def import_cmd(
    files: list[Path] = typer.Argument(..., help="redistrib_<version>.json manifests (CUDA or driver)."),
    site: Path = typer.Option(..., "--site", help="Site facts file to create or extend (load it with --site)."),
    dry_run: bool = typer.Option(False, "--dry-run", help="Print what would be added; write nothing."),
) -> None:
    """Add the CUDA releases and driver branches that NVIDIA's manifests name and the knowledge base lacks."""
    manifests = [parse_manifest(_read_manifest(f), str(f)) for f in files]
    existing = _read_site(site)
    validate(SiteFacts, existing, str(site), KnowledgeError)
    k = load_knowledge(site if site.exists() else None)
    add = additions(k, manifests)
    for note in add.notes:
        console.print(f"skipped: {note}", markup=False)
    for r in add.releases:
        need = r.get("min_driver") or (f"R{r['driver_branch']}" if "driver_branch" in r else "driver unknown")
        console.print(f"add: {r['label']} ({need}) from {r['source']}", markup=False)
    for b in add.branches:
        console.print(f"add: driver branch R{b['branch']} from {b['source']}", markup=False)
    if not add.releases and not add.branches:
        console.print("nothing new: the knowledge base already has every release these manifests name")
        raise typer.Exit(int(Exit.OK))
    merged = merged_site(existing, add)
    validate(SiteFacts, merged, str(site), KnowledgeError)
    if dry_run:
        console.print(f"dry run: {site} not written", markup=False)
        return
    _write_atomically(site, yaml.safe_dump(merged, sort_keys=False, allow_unicode=True))
    after = load_knowledge(site)
    data = summary(after)
    console.print(
        f"wrote {site}: knowledge {data['knowledge_version']} (facts as of {data['date']}); "
        f"load it with --site {site}",
        markup=False,
    )
