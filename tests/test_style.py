"""Architecture rules from the style guide, checked on the source: where IO and printing may live."""

from __future__ import annotations

import ast
from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[1] / "orchestrator"


def imported_modules(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(encoding="utf-8"))
    names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.update(alias.name.split(".")[0] for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module.split(".")[0])
    return names


def sources() -> list[Path]:
    return [p for p in PACKAGE.rglob("*.py") if "assets" not in p.parts and "_bundled" not in p.parts]


def test_only_the_cli_prints_with_typer_or_rich() -> None:
    offenders = [str(p.relative_to(PACKAGE)) for p in sources()
                 if p.parent.name != "cli" and imported_modules(p) & {"typer", "rich", "click"}]
    assert offenders == []


def test_ansible_runner_is_imported_in_one_adapter_only() -> None:
    users = sorted(str(p.relative_to(PACKAGE)) for p in sources() if "ansible_runner" in imported_modules(p))
    assert users == ["ansible_adapter.py"]


def test_collector_uses_only_the_standard_library() -> None:
    allowed = {"__future__", "json", "re", "xml", "typing"}
    assert imported_modules(PACKAGE / "facts" / "collector.py") <= allowed
