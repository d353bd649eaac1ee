"""Dev tools the tests run (ansible-lint, molecule): installed by `pip install -e '.[dev]'` (scripts/setup.sh).

A missing one fails the test with the line that fixes it: a test that skips for a missing tool hides a
broken setup, in CI above all.
"""

from __future__ import annotations

import shutil
import sys
from pathlib import Path

import pytest


def tool(name: str) -> str:
    """The tool installed beside this Python (a venv) or on PATH; fails the test naming the fix when missing."""
    beside = Path(sys.executable).parent / name
    found = str(beside) if beside.exists() else shutil.which(name)
    if not found:
        pytest.fail(f"{name} is not installed: run `bash scripts/setup.sh` (or `pip install -e '.[dev]'`), "
                    "which installs it", pytrace=False)
    return found
