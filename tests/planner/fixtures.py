"""Scenario fixtures: a fleet written as YAML (hosts with stacks), loaded strictly so stale fixtures fail."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import yaml
from pydantic import Field

from orchestrator.model.stack import Connection, FailureDomains, Fleet, Host, HostPackages, SoftwareStack, StrictModel
from orchestrator.planner import UnknownHost
from tests.support.simhost import REPOSITORY

NOW = datetime(2026, 12, 1, 9, 0, tzinfo=UTC)


class FixtureHost(StrictModel):
    name: str
    pool: str
    gpu: str
    gpu_count: int = 8
    nvswitch: bool = False
    rack: str | None = None
    switch: str | None = None
    nvlink_domain: str | None = None
    cordoned: bool = False
    stack: SoftwareStack | str


class FixtureUnknown(StrictModel):
    name: str
    pool: str
    reason: str = "unreachable"


class FixtureFleet(StrictModel):
    """``repository``: the builds every host's repositories offer (default: the simulated hosts' repository)."""

    stacks: dict[str, SoftwareStack] = {}
    repository: dict[str, tuple[str, ...]] | None = None
    hosts: tuple[FixtureHost, ...]
    unknown: tuple[FixtureUnknown, ...] = ()
    now: datetime = NOW


class Expected(StrictModel):
    waves: list[list[str]] | None = None
    order: dict[str, list[list[str]]] = {}
    steps: dict[str, list[str]] = {}
    excluded: dict[str, str] = {}
    noop: list[str] = []
    one_wave_pools: list[str] = []
    errors: list[str] = Field(default=[], description="substrings, each found in some reason of the PlanError")
    warnings: list[str] = Field(default=[], description="substrings, each found in some warning of the plan")


def load_fleet(path: Path) -> tuple[Fleet, list[UnknownHost], datetime]:
    raw = FixtureFleet.model_validate(yaml.safe_load(path.read_text()))
    hosts = []
    offered = raw.repository if raw.repository is not None else {k: tuple(v) for k, v in REPOSITORY.items()}
    for h in raw.hosts:
        stack = raw.stacks[h.stack] if isinstance(h.stack, str) else h.stack
        hosts.append(Host(
            name=h.name, connection=Connection(address=h.name), pool=h.pool, gpu=h.gpu, gpu_count=h.gpu_count,
            nvswitch=h.nvswitch, domains=FailureDomains(rack=h.rack, switch=h.switch, nvlink_domain=h.nvlink_domain),
            stack=stack, packages=HostPackages(manager="apt", available=offered),
            cordoned_by_hand=h.cordoned, cordon_reason="by hand" if h.cordoned else None,
        ))
    unknown = [UnknownHost(u.name, u.pool, u.reason) for u in raw.unknown]
    return Fleet(hosts=tuple(hosts)), unknown, raw.now
