"""Architecture rules from the style guide: where IO and printing may live, checked on what really gets imported.

Each pure package is imported, with every module in it, in a fresh interpreter; the test then looks at
``sys.modules``: a pure package that pulls in Ansible, SQLite, a terminal library or an adapter fails, however
indirectly it happens (a source grep would miss ``planner -> artifact -> inventory -> ansible``).
"""

from __future__ import annotations

import ast
import json
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = ROOT / "orchestrator"
PURE = ("model", "knowledge", "planner", "run", "hostside")
# Never loaded by pure code: IO libraries, terminal libraries, and the project's own edges.
FORBIDDEN = ("ansible", "ansible_runner", "sqlite3", "psycopg", "typer", "rich", "click", "paramiko",
             "orchestrator.adapters", "orchestrator.app", "orchestrator.cli", "orchestrator.lab")


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


def _modules_of(package: str) -> list[str]:
    folder = PACKAGE / package
    return sorted(f"orchestrator.{package}." + ".".join(p.relative_to(folder).with_suffix("").parts)
                  for p in folder.rglob("*.py") if p.name != "__init__.py") or [f"orchestrator.{package}"]


def _loaded_after_import(modules: list[str]) -> list[str]:
    code = ("import importlib, json, sys\n"
            f"for m in {modules!r}: importlib.import_module(m)\n"
            "print(json.dumps(sorted(sys.modules)))")
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT, check=True)
    loaded: list[str] = json.loads(proc.stdout)
    return loaded


@pytest.mark.parametrize("package", PURE)
def test_pure_package_loads_no_io_or_edge_module(package: str) -> None:
    loaded = _loaded_after_import(_modules_of(package))
    bad = sorted(m for m in loaded if any(m == f or m.startswith(f + ".") for f in FORBIDDEN))
    assert bad == [], f"orchestrator.{package} pulls in {bad}"


def test_the_guard_catches_an_edge_import() -> None:
    """The guard itself: importing an adapter does load what the pure packages must not."""
    loaded = _loaded_after_import(["orchestrator.adapters.ansible"])
    assert "ansible_runner" in loaded


MODULE_UTILS = "ansible_collections.gpu_fleet.upgrade.plugins.module_utils"


def _hostside_siblings(path: Path) -> set[str]:
    """Full names a hostside file imports from its siblings: in the project, or shipped as module_utils."""
    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.ImportFrom) and node.module in ("orchestrator.hostside", MODULE_UTILS):
            names.add(node.module)
    return names


def test_hostside_code_uses_only_the_standard_library() -> None:
    allowed = set(sys.stdlib_module_names) | {"__future__"}
    for path in (PACKAGE / "hostside").glob("*.py"):
        siblings = _hostside_siblings(path)
        others = imported_modules(path) - {name.split(".")[0] for name in siblings}
        assert others <= allowed, path.name
        # a sibling is the one thing it may import from outside the standard library: nothing else of either
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.ImportFrom) and node.module and node.module.split(".")[0] in (
                    "orchestrator", "ansible", "ansible_collections"):
                assert node.module in siblings, (path.name, node.module)
                assert all((PACKAGE / "hostside" / f"{a.name}.py").exists()
                           or a.name.startswith("upgrade_") for a in node.names), (path.name, node.module)


def test_only_the_cli_prints_with_typer_or_rich() -> None:
    offenders = [str(p.relative_to(PACKAGE)) for p in sources()
                 if p.parent.name != "cli" and imported_modules(p) & {"typer", "rich", "click"}]
    assert offenders == []


def test_ansible_runner_is_imported_in_one_adapter_only() -> None:
    users = sorted(str(p.relative_to(PACKAGE)) for p in sources() if "ansible_runner" in imported_modules(p))
    assert users == ["adapters/ansible.py"]
