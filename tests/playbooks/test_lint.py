"""ansible-lint (production profile, .ansible-lint) over playbooks/: what an Ansible team's CI would run."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

from tests.support.tools import tool

ROOT = Path(__file__).resolve().parents[2]


def test_playbooks_are_ansible_lint_clean() -> None:
    lint = tool("ansible-lint")
    proc = subprocess.run([lint, "--offline", "--nocolor", "playbooks/"], cwd=ROOT, capture_output=True, text=True,
                          timeout=600, check=False, env={**os.environ, "NO_COLOR": "1"})
    assert proc.returncode == 0, proc.stdout[-4000:] + proc.stderr[-4000:]
