"""Version drift inside each pool: which components are mixed and which hosts are off the majority.

Pure: stacks in, report out. Mixed versions in a pool are the first suspect when a multi-node job fails.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping

from pydantic import BaseModel, ConfigDict

from orchestrator.model.stack import COMPONENTS, SoftwareStack

ABSENT = "-"


class ComponentDrift(BaseModel):
    """One component that has more than one value in a pool."""

    model_config = ConfigDict(frozen=True)
    component: str
    values: dict[str, int]
    majority: str | None
    off_majority: list[str]


class PoolDrift(BaseModel):
    model_config = ConfigDict(frozen=True)
    pool: str
    hosts: int
    mixed: list[ComponentDrift]

    @property
    def drifting_hosts(self) -> set[str]:
        return {h for c in self.mixed for h in c.off_majority}


def value_of(stack: SoftwareStack, component: str) -> str:
    value = stack.component(component)
    return ABSENT if value is None else str(value)


def pool_drift(pool: str, stacks: Mapping[str, SoftwareStack]) -> PoolDrift:
    """Compare one pool's hosts component by component; ties have no majority and flag every host."""
    mixed = []
    for component in COMPONENTS:
        values = {host: value_of(stack, component) for host, stack in stacks.items()}
        counts = Counter(values.values())
        if len(counts) < 2:
            continue
        ranked = counts.most_common()
        majority = ranked[0][0] if ranked[0][1] > ranked[1][1] else None
        off = sorted(h for h, v in values.items() if v != majority)
        mixed.append(ComponentDrift(component=component, values=dict(sorted(counts.items())),
                                    majority=majority, off_majority=off))
    return PoolDrift(pool=pool, hosts=len(stacks), mixed=mixed)


def fleet_drift(pools: Mapping[str, Mapping[str, SoftwareStack]]) -> list[PoolDrift]:
    return [pool_drift(pool, pools[pool]) for pool in sorted(pools)]
