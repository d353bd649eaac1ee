"""The pure entry points: ``check`` one stack on one piece of hardware, ``check_transition`` before -> after.

Example::

    k = load_knowledge()
    check(k, Hardware(resolve_gpu("H100")), SoftwareStack(driver="535.183.01", cuda="12.8"))
    # -> [Violation(rule='cuda-minor-version-compat', severity='warning', ...)]
"""

from __future__ import annotations

from collections.abc import Iterable

# Importing the rule modules fills the RULES table.
from orchestrator.knowledge import rules_libraries, rules_platform, rules_stack  # noqa: F401
from orchestrator.knowledge.findings import CheckContext, Hardware, Severity, Violation
from orchestrator.knowledge.loader import Knowledge
from orchestrator.knowledge.rules import RULES, W
from orchestrator.model.stack import Host, SoftwareStack

_ORDER = {Severity.ERROR: 0, Severity.WARNING: 1}


def rule_ids() -> list[str]:
    """Every stable rule id, in table order (for docs and tests)."""
    return [i for r in RULES for i in r.ids] + ["driver-downgrade", "kernel-module-flavor-change"]


def _hardware(hardware: Hardware | Host) -> Hardware:
    return Hardware.of(hardware) if isinstance(hardware, Host) else hardware


def _sorted(found: Iterable[Violation]) -> list[Violation]:
    unique = list(dict.fromkeys(found))
    return sorted(unique, key=lambda v: (_ORDER[v.severity], v.rule, v.subject or "", v.message))


def check(
    knowledge: Knowledge, hardware: Hardware | Host, stack: SoftwareStack, context: CheckContext | None = None
) -> list[Violation]:
    """Every rule's findings for one stack, errors first, in a stable order."""
    hw = _hardware(hardware)
    ctx = context or CheckContext()
    return _sorted(v for r in RULES for v in r.fn(knowledge, hw, stack, ctx))


def check_transition(
    knowledge: Knowledge,
    hardware: Hardware | Host,
    before: SoftwareStack,
    after: SoftwareStack,
    context: CheckContext | None = None,
) -> list[Violation]:
    """Findings the move introduces: the after-stack's violations not already present, plus step rules."""
    hw = _hardware(hardware)
    old = set(check(knowledge, hw, before, context))
    found = [v for v in check(knowledge, hw, after, context) if v not in old]
    return _sorted([*found, *step_findings(before, after)])


def step_findings(before: SoftwareStack, after: SoftwareStack) -> list[Violation]:
    """The rules of the move itself, whatever either stack holds: a driver downgrade, a module flavor switch."""
    found = []
    if before.driver and after.driver and after.driver < before.driver:
        found.append(
            Violation(
                rule="driver-downgrade",
                severity=W,
                source="orchestrator/knowledge/engine.py",
                message=f"driver goes down from {before.driver} to {after.driver}",
                fix="confirm the downgrade is intended (pin the older package explicitly)",
            )
        )
    if before.kernel_module and after.kernel_module and before.kernel_module != after.kernel_module:
        found.append(
            Violation(
                rule="kernel-module-flavor-change",
                severity=W,
                source="https://docs.nvidia.com/datacenter/tesla/driver-installation-guide/"
                "kernel-modules.html",
                message=f"kernel modules switch from {before.kernel_module} to {after.kernel_module}",
                fix="remove the old flavor's packages before installing the new one",
            )
        )
    return found


def worst(violations: Iterable[Violation]) -> Severity | None:
    """The most severe finding, or None when clean (the CLI maps it to an exit code)."""
    severities = {v.severity for v in violations}
    if Severity.ERROR in severities:
        return Severity.ERROR
    return Severity.WARNING if severities else None
