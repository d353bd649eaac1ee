"""Errors of the lab; they carry their data and subclass the project's error root."""

from __future__ import annotations

from orchestrator.errors import UpgradeError


class LabError(UpgradeError):
    """The lab could not be built, started, stopped or changed as asked."""

    def __init__(self, what: str, problem: str, hint: str = "") -> None:
        super().__init__(what, problem, hint)
        self.what = what
        self.problem = problem
        self.hint = hint

    def __str__(self) -> str:
        return f"lab: {self.what}: {self.problem}" + (f" ({self.hint})" if self.hint else "")
