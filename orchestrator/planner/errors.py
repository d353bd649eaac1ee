"""Planner errors: an invalid plan carries every reason at once, a bad plan file names the file."""

from __future__ import annotations

from orchestrator.errors import InputError, UpgradeError


class PlanError(UpgradeError):
    """The inputs cannot give a safe plan; ``reasons`` lists every problem found, one line each."""

    def __init__(self, reasons: list[str]) -> None:
        super().__init__(reasons)
        self.reasons = list(reasons)

    def __str__(self) -> str:
        return "\n".join(self.reasons)


class PlanFileError(InputError):
    """A plan file is missing, not a plan, or was edited after it was made (hash mismatch)."""
