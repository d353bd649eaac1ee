"""Big fleets in few lines: outputs list every host up to a size, and summarise per pool and class above it."""

from __future__ import annotations

from collections.abc import Sequence

DETAILS_UP_TO = 50  # hosts: below this every command prints one line per host unless asked otherwise
SAMPLE = 5


def per_host(details: bool, hosts: int) -> bool:
    """One line per host: asked for with --details, or a fleet small enough to read whole."""
    return details or hosts <= DETAILS_UP_TO


def sample(names: Sequence[str], k: int = SAMPLE) -> str:
    """``a, b, c`` or ``a, b, c, ... (+12 more)``: a few names to look up, never thousands."""
    shown = ", ".join(names[:k])
    return shown if len(names) <= k else f"{shown}, ... (+{len(names) - k} more)"


DETAILS_HELP = (f"One line per host (the default up to {DETAILS_UP_TO} hosts; bigger fleets are summarised per "
                f"pool and class of hosts alike).")
