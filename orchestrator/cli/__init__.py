"""The `upgrade` command. Only this package prints, colours and picks exit codes.

Exit codes shared by every command: 0 clean, 1 warnings (drift, unreachable hosts, findings of severity
warning), 2 refused or invalid input, 3 halted and needs a person. An unexpected exception prints one line
plus where the full traceback was written, never the traceback itself.
"""

from __future__ import annotations

import sys

from orchestrator.cli.app import app
from orchestrator.cli.output import run_guarded

# Each command group registers itself on `app` when its module is imported.
from orchestrator.cli import facts_cmd  # noqa: F401  isort: skip
from orchestrator.cli import lab_cmd  # noqa: F401  isort: skip
from orchestrator.cli import compat_cmd  # noqa: F401  isort: skip
from orchestrator.cli import plan_cmd  # noqa: F401  isort: skip
from orchestrator.cli import apply_cmd  # noqa: F401  isort: skip
from orchestrator.cli import knowledge_cmd  # noqa: F401  isort: skip
from orchestrator.cli import report_cmd  # noqa: F401  isort: skip
from orchestrator.cli import gate_cmd  # noqa: F401  isort: skip


def main() -> None:
    sys.exit(run_guarded(app))
