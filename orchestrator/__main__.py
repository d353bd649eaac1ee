"""`python -m orchestrator` is the same as the `upgrade` console script."""

from orchestrator.cli import main

main()
