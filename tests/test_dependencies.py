"""Every third-party module the package imports at run time comes from a distribution pyproject.toml declares."""

from __future__ import annotations

import ast
import importlib.metadata
import re
import sys
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def _name(requirement: str) -> str:
    return re.split(r"[<>=!~;\[ ]", requirement, maxsplit=1)[0].strip().lower().replace("_", "-")


def imported_modules() -> dict[str, set[str]]:
    """Top-level module -> the package files importing it (lab assets are shipped into lab hosts, not imported)."""
    found: dict[str, set[str]] = {}
    for path in (ROOT / "orchestrator").rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            names = []
            if isinstance(node, ast.Import):
                names = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                names = [node.module]
            for name in names:
                found.setdefault(name.split(".")[0], set()).add(str(path.relative_to(ROOT)))
    return found


def declared() -> set[str]:
    return {_name(r) for r in tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["dependencies"]}


# Import roots no installed distribution lists: ansible-core's collection loader makes ``ansible_collections``
# when a module runs (the host-side gate imports its siblings through it as the collection's module_utils).
NAMESPACES = {"ansible_collections": {"ansible-core"}}


def undeclared(found: dict[str, set[str]], names: set[str], providers: dict[str, list[str]]) -> list[str]:
    """The imported third-party modules that no declared distribution provides, with one file importing each."""
    missing = []
    for module, files in sorted(found.items()):
        if module in sys.stdlib_module_names or module == "orchestrator":
            continue
        dists = {d.lower().replace("_", "-") for d in providers.get(module, [])} | NAMESPACES.get(module, set())
        if not dists & names:
            missing.append(f"{module} ({', '.join(sorted(dists)) or 'not installed'}) imported by {sorted(files)[0]}")
    return missing


def test_every_runtime_import_is_a_declared_dependency() -> None:
    found = imported_modules()
    # the scan sees the package's real imports, the lab's cryptography and the journal's psycopg among them
    assert {"ansible_runner", "pydantic", "yaml", "cryptography", "psycopg", "prometheus_client"} <= set(found)
    assert undeclared(found, declared(), importlib.metadata.packages_distributions()) == []


def test_the_check_names_an_undeclared_import() -> None:
    """Without cryptography in pyproject.toml (issue 13's finding) the check fails and says which file imports it;
    a module from no installed distribution is named too."""
    providers = importlib.metadata.packages_distributions()
    found = {"cryptography": {"orchestrator/lab/x.py"}, "yaml": {"orchestrator/a.py"}, "json": {"orchestrator/b.py"},
             "no_such_module_here": {"orchestrator/c.py"}}
    assert undeclared(found, declared() - {"cryptography"}, providers) == [
        "cryptography (cryptography) imported by orchestrator/lab/x.py",
        "no_such_module_here (not installed) imported by orchestrator/c.py"]
