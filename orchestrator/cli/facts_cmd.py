"""`upgrade facts`: the fleet's GPU stack versions side by side, drift highlighted."""

from __future__ import annotations

from orchestrator.cli.app import app


@app.command("facts")
def facts() -> None:
    """Show each host's driver, CUDA, cuDNN, NCCL, fabric manager versions (work in progress)."""
