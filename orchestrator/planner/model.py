"""The plan artifact's schema: what a person reviews and what ``upgrade apply`` will re-load and verify.

Hosts that plan alike share one :class:`HostClass` (pool, hardware, current stack, target, the builds their
repositories offer: one step list, one verdict); each host is one compact :class:`HostRow` (name, wave,
class, failure domains), so a plan of a million hosts stays small. ``Plan.host(name)`` gives the full
:class:`HostPlan` view of one host. Every list is sorted so the same inputs give a byte-identical file.
Times are ISO 8601 in UTC, durations are seconds.
"""

from __future__ import annotations

from enum import StrEnum
from typing import Literal, NamedTuple, Self

from pydantic import BaseModel, ConfigDict, Field, PrivateAttr, model_validator

from orchestrator.model.grammar import PACKAGE, check_var, is_build
from orchestrator.model.policy import PoolRules, RolloutPolicy
from orchestrator.model.stack import SoftwareStack

PLAN_SCHEMA_VERSION = 3


class PlanModel(BaseModel):
    """Base of plan models: unknown keys are refused when a plan is loaded, instances are immutable."""

    model_config = ConfigDict(extra="forbid", frozen=True)


class StepKind(StrEnum):
    PRECHECK = "precheck"
    DRAIN = "drain"
    CHANGE = "change"
    REBOOT = "reboot"
    VERIFY = "verify"
    GATE = "gate"
    UNCORDON = "uncordon"


# A playbook variable's value: plain data, passed to Ansible so that it is never templated.
# a workload gate travels as one mapping (`gate_workload`, checked by grammar.check_var like the rest)
VarValue = str | int | bool | dict[str, str | int | list[str] | None]


class Step(PlanModel):
    """One node of a host's step graph; ``needs`` are the ids that must finish first.

    ``playbook`` and ``vars`` are exactly what apply runs for this step (``None``: nothing runs, e.g. a
    component the target leaves alone); ``package`` and ``build`` are the pinned package and its exact build.
    """

    id: str
    kind: StepKind
    component: str | None = None
    from_version: str | None = None
    to_version: str | None = None
    group: int | None = Field(default=None, description="component changes of one group install together")
    gate: str | None = None
    needs_reboot: bool = False
    estimate_s: int
    needs: tuple[str, ...] = ()
    package: str | None = None
    build: str | None = None
    playbook: str | None = Field(default=None, pattern=r"^[a-z_]+\.yml$")
    vars: dict[str, VarValue] = {}

    @model_validator(mode="after")
    def _vars_follow_their_grammar(self) -> Self:
        for key, value in self.vars.items():
            problem = check_var(key, value)
            if problem:
                raise ValueError(f"step {self.id}: {problem}")
        if self.package is not None and not PACKAGE.match(self.package):
            raise ValueError(f"step {self.id}: package {self.package!r} is not a package name")
        if self.build is not None and not is_build(self.build):
            raise ValueError(f"step {self.id}: build {self.build!r} is not a package version")
        return self


class Finding(PlanModel):
    """A knowledge-base finding kept on the plan (warnings of a valid target, or why a host was excluded)."""

    rule: str
    severity: str
    message: str


Action = Literal["upgrade", "noop", "excluded"]


class HostPlan(PlanModel):
    """One host: where it is, what it runs, what it will run, and the ordered steps that get it there.

    Not stored as such: ``Plan.host(name)`` builds it from the host's row and class.
    """

    name: str
    pool: str
    gpu: str
    gpu_count: int
    domains: dict[str, str] = {}
    action: Action
    wave: str | None = None
    current: SoftwareStack
    target: SoftwareStack | None = None
    order: tuple[tuple[str, ...], ...] = Field(default=(), description="component groups in install order")
    steps: tuple[Step, ...] = ()
    rollback: tuple[Step, ...] = Field(default=(), description="back to ``current``, run after a failure")
    estimate_s: int = 0
    findings: tuple[Finding, ...] = ()


class HostClass(PlanModel):
    """What the hosts of one equivalence class share: everything of a HostPlan but name, wave and domains."""

    pool: str
    gpu: str
    gpu_count: int
    action: Action
    current: SoftwareStack
    target: SoftwareStack | None = None
    order: tuple[tuple[str, ...], ...] = Field(default=(), description="component groups in install order")
    steps: tuple[Step, ...] = ()
    rollback: tuple[Step, ...] = Field(default=(), description="back to ``current``, run after a failure")
    estimate_s: int = 0
    findings: tuple[Finding, ...] = ()


class HostRow(NamedTuple):
    """One host in the file: ``[name, wave index or null, class index, {domain kind: name}]``."""

    name: str
    wave: int | None
    cls: int
    domains: dict[str, str]


class Wave(PlanModel):
    """Hosts upgraded together; the next wave starts after this one ends and its soak time passes."""

    index: int
    name: str
    hosts: tuple[str, ...]
    hosts_by_pool: dict[str, int]
    gpus_out: int = Field(description="GPUs taken out of service by this wave")
    gpus_out_by_pool: dict[str, int]
    estimate_s: int
    soak_s: int
    earliest_start: str
    end: str
    window: str | None = None
    window_need_s: int = Field(description="time the wave must fit in a window: estimate plus soak (apply checks it)")
    failure_budget: int = Field(description="hosts that may fail in this wave before the rollout halts")


class MixedInterval(PlanModel):
    """A stretch during which a pool runs more than one version of a component."""

    component: str
    from_wave: str | None = Field(description="wave that starts the mixing; None: already mixed before the plan")
    until_wave: str | None = Field(description="wave that ends it; None: still mixed after the plan")
    start: str | None
    end: str | None
    duration_s: int | None
    policy: str
    within_policy: bool


class PoolPlan(PlanModel):
    """Per pool: size, limits as resolved, who is already out of service, and when it runs mixed versions."""

    name: str
    hosts: int
    gpus: int
    upgrade: int
    noop: int
    excluded: int
    out_of_service: tuple[str, ...]
    max_unavailable: int
    max_per_domain: dict[str, int]
    moves_in_one_wave: bool = False
    frozen: bool = Field(default=False, description="max_unavailable resolves to 0: no host of the pool is touched")
    rules: PoolRules
    mixed: tuple[MixedInterval, ...] = ()


class Excluded(PlanModel):
    """A host the plan leaves alone, and why."""

    host: str
    pool: str
    kind: Literal["cordoned", "unknown", "invalid-target", "no-target", "frozen", "no-build"]
    reason: str


class Fingerprints(PlanModel):
    """sha256 of each input, so that apply can refuse a plan made from other inputs than today's."""

    inventory: str
    facts: str
    desired: str
    knowledge: str


class Plan(PlanModel):
    """The whole plan; ``plan_hash`` is sha256 over the bytes of the file that follow its first line."""

    schema_version: Literal[3] = 3
    plan_hash: str = ""
    made_at: str
    desired_name: str
    knowledge_version: str
    inputs: Fingerprints
    sources: dict[str, str] = Field(default={}, description="paths the inputs were read from (apply re-reads them)")
    policy: RolloutPolicy
    classes: tuple[HostClass, ...]
    rows: tuple[HostRow, ...] = Field(description="every host with facts, sorted by name")
    waves: tuple[Wave, ...]
    pools: tuple[PoolPlan, ...]
    excluded: tuple[Excluded, ...]
    noop: tuple[str, ...]
    warnings: tuple[str, ...]
    start: str
    end: str
    estimate_s: int
    failure_budget_total: int
    drain_reason: str = Field(description="the reason apply drains with; uncordon resumes only nodes drained with it")
    canary_by: str = Field(default="", description="what chose the canary hosts after the spread over failure "
                                                   "domains: empty (by name), or the job ends the planner was given")
    _index: dict[str, int] | None = PrivateAttr(default=None)
    _views: dict[str, HostPlan] = PrivateAttr(default_factory=dict)
    _text: str | None = PrivateAttr(default=None)

    @model_validator(mode="after")
    def _rows_name_classes_and_waves(self) -> Self:
        count, waves = len(self.classes), len(self.waves)
        members: list[list[str]] = [[] for _ in self.waves]
        for row in self.rows:
            if not 0 <= row.cls < count:
                raise ValueError(f"host {row.name} names class {row.cls}, which the plan does not have")
            if row.wave is not None:
                if not 0 <= row.wave < waves:
                    raise ValueError(f"host {row.name} names wave {row.wave}, which the plan does not have")
                members[row.wave].append(row.name)
        for wave, names in zip(self.waves, members, strict=True):
            if set(wave.hosts) != set(names):
                stray = sorted(set(wave.hosts) ^ set(names))[0]
                raise ValueError(f"wave {wave.name} names {stray}, which is not a host the plan upgrades")
        for row in self.rows:
            if row.wave is not None and self.classes[row.cls].action != "upgrade":
                raise ValueError(f"wave {self.waves[row.wave].name} names {row.name}, which is not a host the "
                                 f"plan upgrades")
        return self

    def has_host(self, name: str) -> bool:
        return name in self._positions()

    def _positions(self) -> dict[str, int]:
        if self._index is None:
            self._index = {r.name: i for i, r in enumerate(self.rows)}
        return self._index

    def host(self, name: str) -> HostPlan:
        """The full view of one host (KeyError for a host the plan does not name)."""
        view = self._views.get(name)
        if view is None:
            view = self._view(self.rows[self._positions()[name]])
            self._views[name] = view
        return view

    def _view(self, row: HostRow) -> HostPlan:
        c = self.classes[row.cls]
        return HostPlan.model_construct(
            name=row.name, pool=c.pool, gpu=c.gpu, gpu_count=c.gpu_count, domains=row.domains, action=c.action,
            wave=None if row.wave is None else self.waves[row.wave].name, current=c.current, target=c.target,
            order=c.order, steps=c.steps, rollback=c.rollback, estimate_s=c.estimate_s, findings=c.findings,
        )

    @property
    def hosts(self) -> tuple[HostPlan, ...]:
        """Every host's view, by name; builds one object per host, so loops over big plans use ``rows``."""
        return tuple(self._view(r) for r in self.rows)

    def hosts_in(self, action: Action) -> list[str]:
        """Names of the hosts whose class has ``action``, in name order."""
        return [r.name for r in self.rows if self.classes[r.cls].action == action]
