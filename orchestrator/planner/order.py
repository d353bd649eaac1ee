"""Derive the order of a host's component changes from the knowledge base instead of hard-coding it.

The changes are grouped into units: the driver unit (kernel-module flavor, driver, fabric manager, which
move together because the host runs nothing between them and the reboot; on NVSwitch systems a driver
without its matching fabric manager is an error) and one unit per other component. A plan is a sequence of
groups of units, each group installed together. Every stack between two groups must be valid: it may not
hold an ERROR finding that neither the before- nor the after-stack holds (findings compared by rule and
subject). Among the valid sequences the one with the most groups wins (small steps, easy to roll back);
ties go to the preferred direction: driver first on an upgrade (a newer driver runs older toolkits), the
libraries and toolkit first on a downgrade (an older toolkit runs on the newer driver). Moving everything
in one group is always valid, so a sequence always exists. The search walks the 2^units subsets of changes
(at most 64) with memoised checks, so it is cheap and deterministic.

Example: H100, 535 + CUDA 12.2 + cuDNN 8.9 + NCCL +cuda12.2 -> 580 + CUDA 13.0 + cuDNN 9.17 + NCCL +cuda13.0
gives ``[driver] [cudnn] [cuda, nccl]``: cuDNN 9.17 runs on CUDA 12 and 13, but NCCL's CUDA build must
match the toolkit's major, so those two move together.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import cache

from orchestrator.knowledge import CheckContext, Hardware, Knowledge, Severity, check
from orchestrator.model.stack import SoftwareStack

DRIVER_UNIT = ("kernel_module", "driver", "fabric_manager")
# The kernel moves after the driver (its NVIDIA module is then the planned driver's: precompiled package or DKMS
# build), before the one reboot; on a way back it moves first.
UNITS: tuple[tuple[str, ...], ...] = (DRIVER_UNIT, ("kernel",), ("cuda",), ("cudnn",), ("nccl",),
                                      ("container_toolkit",), ("dcgm",))
MANAGED = tuple(c for unit in UNITS for c in unit)

Key = frozenset[tuple[str, str]]


def changed(before: SoftwareStack, after: SoftwareStack) -> tuple[str, ...]:
    """The managed components whose value differs, in display order."""
    return tuple(c for c in MANAGED if before.component(c) != after.component(c))


def is_downgrade(before: SoftwareStack, after: SoftwareStack) -> bool:
    """Direction of the whole move: the driver decides, else the toolkit; anything else counts as an upgrade."""
    for name in ("driver", "cuda"):
        old, new = getattr(before, name), getattr(after, name)
        if old is not None and new is not None and old != new:
            return bool(new < old)
    return False


class OrderFinder:
    """Memoises error findings per (hardware, stack) across the hosts of one planning run."""

    def __init__(self, knowledge: Knowledge, context: CheckContext) -> None:
        self.knowledge = knowledge
        self.context = context
        self._errors: dict[tuple[Hardware, SoftwareStack], Key] = {}
        self._orders: dict[tuple[Hardware, SoftwareStack, SoftwareStack], tuple[tuple[str, ...], ...]] = {}

    def errors(self, hw: Hardware, stack: SoftwareStack) -> Key:
        key = (hw, stack)
        found = self._errors.get(key)
        if found is None:
            found = frozenset(
                (v.rule, v.subject or "")
                for v in check(self.knowledge, hw, stack, self.context)
                if v.severity is Severity.ERROR
            )
            self._errors[key] = found
        return found

    def order(self, hw: Hardware, before: SoftwareStack, after: SoftwareStack) -> tuple[tuple[str, ...], ...]:
        """Groups of changed components in install order (each group's components in unit order)."""
        key = (hw, before, after)
        if key not in self._orders:
            self._orders[key] = self._search(hw, before, after)
        return self._orders[key]

    def _search(self, hw: Hardware, before: SoftwareStack, after: SoftwareStack) -> tuple[tuple[str, ...], ...]:
        moving = set(changed(before, after))
        units = [tuple(c for c in u if c in moving) for u in UNITS]
        units = [u for u in units if u]
        if not units:
            return ()
        if is_downgrade(before, after):
            units = units[::-1]
        n = len(units)
        full = (1 << n) - 1
        allowed = self.errors(hw, before) | self.errors(hw, after)

        def stack_of(mask: int) -> SoftwareStack:
            update = {c: after.component(c) for i, u in enumerate(units) if mask >> i & 1 for c in u}
            return before.model_copy(update=update)

        @cache
        def valid(mask: int) -> bool:  # the search reaches each subset from many others: judge it once
            return mask == full or self.errors(hw, stack_of(mask)) <= allowed

        best = _best_path(n, valid)
        return tuple(tuple(c for i in group for c in units[i]) for group in best)


def _best_path(n: int, valid: Callable[[int], bool]) -> tuple[tuple[int, ...], ...]:
    """The valid path from no unit to all units with the most groups, then lowest preference ranks first."""
    full = (1 << n) - 1

    @cache
    def best(mask: int) -> tuple[tuple[int, ...], ...] | None:
        if mask == full:
            return ()
        rest = full & ~mask
        choice: tuple[tuple[int, ...], ...] | None = None
        sub = rest
        while sub:
            nxt = mask | sub
            if valid(nxt):
                tail = best(nxt)
                if tail is not None:
                    group = tuple(i for i in range(n) if sub >> i & 1)
                    path = (group, *tail)
                    if choice is None or (-len(path), path) < (-len(choice), choice):
                        choice = path
            sub = (sub - 1) & rest
        return choice

    found = best(0)
    assert found is not None  # moving every unit at once is always valid
    return found
