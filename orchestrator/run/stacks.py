"""Compare a host's reported stack with the plan's: what precheck, verify and preflight agree on."""

from __future__ import annotations

from orchestrator.model.drift import value_of
from orchestrator.model.stack import COMPONENTS, SoftwareStack


def kernel_moves(current: SoftwareStack, target: SoftwareStack | None) -> bool:
    """Does the plan move the host's kernel? Only then is the running kernel part of what must match."""
    return target is not None and target.kernel is not None and target.kernel != current.kernel


def mismatches(live: SoftwareStack, target: SoftwareStack, kernel: bool = False) -> list[str]:
    """Components whose installed version is not the target's; a two-part CUDA target accepts any update. The
    kernel counts only with ``kernel`` (a plan that moves it): otherwise it is not managed."""
    out = []
    for c in COMPONENTS:
        want = target.component(c)
        if want is None or (c == "kernel" and not kernel):
            continue
        have = live.component(c)
        if c == "cuda" and have is not None and target.cuda is not None and target.cuda.text.count(".") == 1:
            same = live.cuda is not None and live.cuda.major_minor == target.cuda
        else:
            same = have == want
        if not same:
            out.append(f"{c} is {value_of(live, c)}, planned {value_of(target, c)}")
    return out
