"""The per-host state machine of a run: every host is always in exactly one named state with a reason.

Users of peer tools ask for this first: "nodes stuck mid-upgrade with no clear state". Every change goes
through :func:`transition`, which refuses moves the machine does not allow, so the journal can never hold
an impossible history.

::

    pending -> cordoned -> drained -> upgrading -> [rebooting ->] verifying -> validated -> done
       any active state -> failed -> rolling_back -> rolled_back (uncordoned, healthy)
                                                  \\-> quarantined (left drained, with the reason)
"""

from __future__ import annotations

from enum import StrEnum

from orchestrator.errors import UpgradeError


class HostState(StrEnum):
    PENDING = "pending"
    SKIPPED = "skipped"  # no-op, cordoned by hand, or excluded by the plan
    CORDONED = "cordoned"
    DRAINED = "drained"
    UPGRADING = "upgrading"
    REBOOTING = "rebooting"
    VERIFYING = "verifying"
    VALIDATED = "validated"
    DONE = "done"
    FAILED = "failed"
    ROLLING_BACK = "rolling_back"
    ROLLED_BACK = "rolled_back"
    QUARANTINED = "quarantined"


S = HostState
_ACTIVE = {S.CORDONED, S.DRAINED, S.UPGRADING, S.REBOOTING, S.VERIFYING, S.VALIDATED}
ALLOWED: dict[HostState, frozenset[HostState]] = {
    S.PENDING: frozenset({S.CORDONED, S.SKIPPED, S.FAILED, S.DONE}),  # done: found at target, verified
    S.CORDONED: frozenset({S.DRAINED, S.FAILED}),
    S.DRAINED: frozenset({S.UPGRADING, S.FAILED}),
    S.UPGRADING: frozenset({S.REBOOTING, S.VERIFYING, S.FAILED}),
    S.REBOOTING: frozenset({S.VERIFYING, S.FAILED}),
    S.VERIFYING: frozenset({S.VALIDATED, S.FAILED}),
    S.VALIDATED: frozenset({S.DONE, S.FAILED}),
    # a wave-level gate can fail a host that finished, and policy can roll the whole wave back
    S.DONE: frozenset({S.FAILED, S.ROLLING_BACK}),
    S.FAILED: frozenset({S.ROLLING_BACK, S.QUARANTINED}),
    S.ROLLING_BACK: frozenset({S.ROLLED_BACK, S.QUARANTINED}),
    S.ROLLED_BACK: frozenset(),
    S.QUARANTINED: frozenset({S.ROLLING_BACK}),  # a person may retry the rollback by hand
    S.SKIPPED: frozenset(),
}
TERMINAL = frozenset({S.DONE, S.ROLLED_BACK, S.QUARANTINED, S.SKIPPED})
# States in which the host is out of service (counts against max unavailable).
OUT_OF_SERVICE = frozenset(_ACTIVE | {S.FAILED, S.ROLLING_BACK, S.QUARANTINED})


class IllegalTransition(UpgradeError):
    """A move the state machine forbids: a bug or a tampered journal, never something to paper over."""

    def __init__(self, host: str, current: HostState, new: HostState) -> None:
        super().__init__(host, current, new)
        self.host, self.current, self.new = host, current, new

    def __str__(self) -> str:
        allowed = ", ".join(sorted(ALLOWED[self.current])) or "nothing (terminal)"
        return f"{self.host}: cannot go from {self.current} to {self.new} (allowed: {allowed})"


def transition(host: str, current: HostState, new: HostState) -> HostState:
    """Return ``new`` if the machine allows ``current -> new``, else raise :class:`IllegalTransition`."""
    if new not in ALLOWED[current]:
        raise IllegalTransition(host, current, new)
    return new
