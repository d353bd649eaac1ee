"""Compare a host's reported stack with the plan's: what precheck, verify and preflight agree on."""

from __future__ import annotations

from orchestrator.model.drift import value_of
from orchestrator.model.stack import COMPONENTS, SoftwareStack


def mismatches(live: SoftwareStack, target: SoftwareStack) -> list[str]:
    """Components whose installed version is not the target's; a two-part CUDA target accepts any update."""
    out = []
    for c in COMPONENTS:
        want = target.component(c)
        if want is None or c == "kernel":
            continue
        have = live.component(c)
        if c == "cuda" and have is not None and target.cuda is not None and target.cuda.text.count(".") == 1:
            same = live.cuda is not None and live.cuda.major_minor == target.cuda
        else:
            same = have == want
        if not same:
            out.append(f"{c} is {value_of(live, c)}, planned {value_of(target, c)}")
    return out
