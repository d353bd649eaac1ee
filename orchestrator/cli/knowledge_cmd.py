"""`upgrade knowledge show | import`: what the knowledge base knows, and updating it from NVIDIA's manifests."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import typer
import yaml

from orchestrator.adapters.files import write_atomic
from orchestrator.cli.app import app
from orchestrator.cli.output import Exit, OutputFormat, console, err_console, print_json
from orchestrator.knowledge import Knowledge, KnowledgeError, load_knowledge
from orchestrator.knowledge.facts import SiteFacts
from orchestrator.knowledge.manifests import additions, merged_site, parse_manifest
from orchestrator.loading import load_json_file, load_yaml_file, validate

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
    return load_json_file(path, KnowledgeError, "manifest")


def _read_site(path: Path) -> dict[str, Any]:
    if not path.exists():
        return {}
    data = load_yaml_file(path, KnowledgeError, "site facts") or {}
    if not isinstance(data, dict):
        raise KnowledgeError(str(path), "not a site facts file (expected a mapping)")
    return data


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
    write_atomic(site, yaml.safe_dump(merged, sort_keys=False, allow_unicode=True), KnowledgeError, "site facts")
    after = load_knowledge(site)
    data = summary(after)
    console.print(
        f"wrote {site}: knowledge {data['knowledge_version']} (facts as of {data['date']}); "
        f"load it with --site {site}",
        markup=False,
    )
