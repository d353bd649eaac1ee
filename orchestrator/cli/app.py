"""The root typer application that every command module registers on."""

from __future__ import annotations

import typer

app = typer.Typer(
    name="upgrade",
    help="Plan and run rolling upgrades of the NVIDIA GPU software stack across a fleet.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)


@app.callback()
def _root() -> None:
    """Plan and run rolling upgrades of the NVIDIA GPU software stack across a fleet."""
