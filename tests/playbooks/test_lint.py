"""ansible-lint (production profile, .ansible-lint) over playbooks/: what an Ansible team's CI would run."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.skipif(shutil.which("ansible-lint") is None, reason="ansible-lint not installed (pip install -e '.[dev]')")
def test_playbooks_are_ansible_lint_clean() -> None:
    proc = subprocess.run(["ansible-lint", "--offline", "playbooks/"], cwd=ROOT, capture_output=True, text=True,
                          timeout=600, check=False)
    assert proc.returncode == 0, proc.stdout[-4000:] + proc.stderr[-4000:]
