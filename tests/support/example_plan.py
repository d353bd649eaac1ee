"""The example fleet's plan, made by the CLI as a user would (`upgrade plan` on inventories/example with its
facts snapshot, at a fixed time), for tests that apply it to simulated hosts."""

from __future__ import annotations

import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
FACTS = ROOT / "inventories" / "example" / "facts.json"
NOW = datetime(2026, 11, 30, 21, 0, tzinfo=UTC)


def write_example_plan(out: Path) -> Path:
    """``plans/example.yaml`` planned for the example inventory at ``NOW``, written to ``out``."""
    subprocess.run([sys.executable, "-m", "orchestrator", "plan", "-i", "inventories/example", "plans/example.yaml",
                    "--facts", str(FACTS), "-o", str(out), "--now", NOW.isoformat()],
                   cwd=ROOT, check=True, capture_output=True)
    return out
