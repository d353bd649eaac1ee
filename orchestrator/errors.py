"""One error root for the whole tool; the CLI turns any of these into one line and an exit code.

Errors keep their data as fields and build the message in ``__str__`` so callers can inspect them.
"""

from __future__ import annotations


class UpgradeError(Exception):
    """Root of every error the orchestrator raises on purpose."""


class InputError(UpgradeError, ValueError):
    """Something the user gave us (file, argument, version string) is wrong."""

    def __init__(self, where: str, problem: str) -> None:
        super().__init__(where, problem)
        self.where = where
        self.problem = problem

    def __str__(self) -> str:
        return f"{self.where}: {self.problem}"


class VersionError(InputError):
    """A version string that does not parse as the kind of version it should be."""

    def __init__(self, kind: str, text: str, expected: str) -> None:
        super().__init__(f"{kind} version {text!r}", f"not a valid version (expected {expected})")
        self.kind = kind
        self.text = text


class UnknownGpuError(InputError):
    """A GPU model name that the catalogue does not know."""

    def __init__(self, name: str, hint: str = "") -> None:
        msg = "unknown GPU model" + (f" ({hint})" if hint else "")
        super().__init__(f"GPU {name!r}", msg)
        self.name = name


class InventoryError(InputError):
    """The Ansible inventory is missing, malformed, or its variables do not fit the fleet model."""


class FactsError(InputError):
    """A facts snapshot is missing, malformed, or inconsistent with the inventory."""


class HostUnreachable(UpgradeError):
    """A host could not be reached over SSH."""

    def __init__(self, host: str, reason: str) -> None:
        super().__init__(host, reason)
        self.host = host
        self.reason = reason

    def __str__(self) -> str:
        return f"{self.host}: unreachable: {self.reason}"


class AnsibleError(UpgradeError):
    """Ansible itself could not be started (not a failed playbook: that is a result)."""


class SchedulerError(UpgradeError):
    """A workload scheduler's client command (``squeue``) could not be run or said something unreadable."""

    def __init__(self, command: str, problem: str) -> None:
        super().__init__(command, problem)
        self.command = command
        self.problem = problem

    def __str__(self) -> str:
        return f"{self.command}: {self.problem}"
