"""Hosts that plan alike are planned once: equivalence classes of hosts, each with one verdict and one step list.

A class is keyed by everything that decides a host's plan: its pool (target, rules, workloads), its hardware
(GPU model, count, NVSwitch), its current stack, why it is left alone (no target, frozen pool, cordoned by
hand), and for a host that moves, what its repositories offer, what it has installed and what it holds of
the packages its steps and rollback steps touch (they decide the pinned builds and the holds). Verdicts,
the order search, the step graphs and pinning run once per class; per host only the key is computed.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from datetime import datetime

from orchestrator.knowledge import CheckContext, Hardware, Knowledge, Severity, Violation, check, step_findings
from orchestrator.model.desired import DesiredState
from orchestrator.model.policy import Gate, PoolRules, RolloutPolicy
from orchestrator.model.stack import Host, HostPackages, SoftwareStack
from orchestrator.planner.model import Excluded, Finding, HostClass, Step
from orchestrator.planner.order import MANAGED, OrderFinder, changed
from orchestrator.planner.packages import Naming, package_name
from orchestrator.planner.steps import Pinning, critical_path_s, ordered_steps, pin_steps, step_graph
from orchestrator.planner.waves import Mover


@dataclass(frozen=True)
class UnknownHost:
    """An inventory host without facts (unreachable, not in the snapshot): left alone, counted as down."""

    name: str
    pool: str
    reason: str
    gpu: str = "unknown"
    gpu_count: int = 0


@dataclass
class Prepared:
    """The classes, and per host (sorted by name) its class and domains; movers, exclusions, invalid targets."""

    classes: list[HostClass] = field(default_factory=list)
    rows: list[tuple[str, int, tuple[tuple[str, str], ...]]] = field(default_factory=list)
    movers: list[Mover] = field(default_factory=list)
    excluded: list[Excluded] = field(default_factory=list)
    invalid: list[str] = field(default_factory=list)
    out_of_service: dict[str, list[str]] = field(default_factory=dict)
    warnings: list[str] = field(default_factory=list)


Base = tuple[str, int, int, "Naming"]  # pool, hardware id, stack id, package naming


@dataclass(frozen=True)
class _Judged:
    """What a (pool, hardware, stack) gets before builds are pinned: target, verdicts, order, unpinned steps."""

    target: SoftwareStack
    noop: bool
    errors: tuple[Violation, ...] = ()
    findings: tuple[Finding, ...] = ()
    order: tuple[tuple[str, ...], ...] = ()
    steps: tuple[Step, ...] = ()
    estimate_s: int = 0
    back: tuple[Step, ...] = ()
    packages: tuple[str, ...] = ()


@dataclass(frozen=True)
class _Pinned:
    """A class as pinned: its index, and what each of its hosts adds to the plan's exclusions and warnings."""

    index: int
    excluded: tuple[str, str] | None  # (kind, reason)
    lost: tuple[str, ...] = ()


def finding(v: Violation) -> Finding:
    subject = f" [{v.subject}]" if v.subject else ""
    return Finding(rule=v.rule, severity=v.severity.value, message=v.message + subject)


class Classifier:
    """Sorts hosts into classes, judging and pinning each class once."""

    def __init__(self, desired: DesiredState, rules: dict[str, PoolRules], policy: RolloutPolicy,
                 knowledge: Knowledge, now: datetime, drain_reason: str, frozen: set[str]) -> None:
        self.desired, self.rules, self.policy, self.knowledge = desired, rules, policy, knowledge
        self.now, self.drain_reason, self.frozen = now, drain_reason, frozen
        self.classes: list[HostClass] = []
        self._keys: dict[tuple[object, ...], _Pinned] = {}
        self._judged: dict[Base, _Judged] = {}
        self._finders: dict[tuple[object, ...], OrderFinder] = {}
        self._packages: dict[tuple[int, tuple[str, ...]], tuple[HostPackages, tuple[object, ...]]] = {}
        self._hardware: dict[tuple[object, ...], tuple[int, Hardware]] = {}
        self._stacks: dict[SoftwareStack, int] = {}

    def base(self, host: Host) -> tuple[Hardware, Base]:
        """The host's hardware and (pool, hardware id, stack id): each stack is hashed once per host."""
        hw_key = (host.gpu, host.gpu_count, host.nvswitch)
        found = self._hardware.get(hw_key)
        if found is None:
            found = self._hardware[hw_key] = (len(self._hardware), Hardware.of(host))
        sid = self._stacks.get(host.stack)
        if sid is None:
            sid = self._stacks[host.stack] = len(self._stacks)
        # The package source names the packages and so decides the steps' packages: it is part of the class.
        return found[1], (host.pool, found[0], sid, Naming.of(host.packages))

    def _context(self, pool: str) -> CheckContext:
        entry = self.desired.pools[pool]
        return CheckContext(now=self.now.date(), pool=pool, production=entry.production, workloads=entry.workloads,
                            cuda_compat=entry.cuda_compat)

    def _new(self, key: tuple[object, ...], host: Host, action: str, excluded: tuple[str, str] | None,
             lost: list[str] | None = None, **fields: object) -> _Pinned:
        self.classes.append(HostClass.model_validate({
            "pool": host.pool, "gpu": host.gpu.name, "gpu_count": host.gpu_count, "action": action,
            "current": host.stack, **fields}))
        pinned = _Pinned(len(self.classes) - 1, excluded, tuple(lost or ()))
        self._keys[key] = pinned
        return pinned

    def left_alone(self, host: Host, base: Base, kind: str, reason: str) -> int:
        """The class of a host excluded before judging (no target, frozen pool, cordoned by hand)."""
        key = (kind, base)
        found = self._keys.get(key) or self._new(key, host, "excluded", (kind, reason))
        return found.index

    def judge(self, host: Host, hw: Hardware, base: Base) -> _Judged:
        found = self._judged.get(base)
        if found is None:
            found = self._judge(host.pool, hw, host.stack, Naming.of(host.packages))
            self._judged[base] = found
        return found

    def _judge(self, pool: str, hw: Hardware, stack: SoftwareStack, naming: Naming) -> _Judged:
        target = self.desired.pools[pool].target.applied_to(stack)
        if not changed(stack, target):
            return _Judged(target, noop=True)
        ctx = self._context(pool)
        found = check(self.knowledge, hw, target, ctx)
        transition = step_findings(stack, target)
        errors = tuple(v for v in found if v.severity is Severity.ERROR)
        if errors:
            return _Judged(target, noop=False, errors=errors)
        warnings = [v for v in found if v.severity is Severity.WARNING]
        findings = tuple(sorted({finding(v) for v in [*warnings, *transition]},
                                key=lambda f: (f.severity, f.rule, f.message)))
        finder = self._finder(ctx)
        gates = self.rules[pool].gates
        order = finder.order(hw, stack, target)
        steps = ordered_steps(step_graph(stack, target, order, gates, self.policy.estimates))
        back = _rollback_steps(finder, hw, stack, target, gates, self.policy)
        packages = sorted({n for c in MANAGED for s in (stack, target)  # every host has a kernel: named when moved
                           if (c != "kernel" or stack.kernel != target.kernel)
                           and (n := package_name(c, s, naming)) is not None})
        return _Judged(target, False, (), findings, order, steps, critical_path_s(steps), back, tuple(packages))

    def _finder(self, ctx: CheckContext) -> OrderFinder:
        """One order search per context that can change an error finding: pools differ only in messages and
        in which golden stacks apply (warnings), so pools alike share their searches."""
        golden = tuple(g.name for g in self.knowledge.golden_stacks if not g.pools or ctx.pool in g.pools)
        key = (ctx.production, ctx.cuda_compat, golden)
        finder = self._finders.get(key)
        if finder is None:
            finder = self._finders[key] = OrderFinder(self.knowledge, replace(ctx, workloads=()))
        return finder

    def noop(self, host: Host, base: Base, judged: _Judged) -> int:
        key = ("noop", base)
        found = self._keys.get(key) or self._new(key, host, "noop", None, target=judged.target)
        return found.index

    def invalid(self, host: Host, base: Base, judged: _Judged) -> int:
        key = ("invalid-target", base)
        found = self._keys.get(key)
        if found is None:
            reason = "; ".join(f"{v.rule}: {v.message}" for v in judged.errors)
            found = self._new(key, host, "excluded", ("invalid-target", reason), target=judged.target,
                              findings=tuple(finding(v) for v in judged.errors))
        return found.index

    def upgrade(self, host: Host, base: Base, judged: _Judged) -> _Pinned:
        """The class of a host that moves, keyed by the builds on offer for its packages as well."""
        shared = (id(host.packages), judged.packages)  # hosts built from one index share it: key it once
        same = self._packages.get(shared)
        if same is not None and same[0] is host.packages:
            pk = same[1]
        else:
            pk = _packages_key(host.packages, judged.packages)
            self._packages[shared] = (host.packages, pk)
        key = ("upgrade", base, pk)
        found = self._keys.get(key)
        if found is not None:
            return found
        r = self.rules[host.pool]
        pinned, missing = pin_steps(judged.steps, Pinning(host, judged.target, self.drain_reason, r.drain.timeout,
                                                          workload_gate=r.workload_gate))
        if missing:
            return self._new(key, host, "excluded", ("no-build", "; ".join(missing)), target=judged.target)
        rollback, lost = pin_steps(judged.back, Pinning(host, host.stack, self.drain_reason, r.drain.timeout,
                                                        prefer_installed=True, workload_gate=r.workload_gate))
        return self._new(key, host, "upgrade", None, target=judged.target, order=judged.order, steps=pinned,
                         rollback=rollback, estimate_s=judged.estimate_s, findings=judged.findings, lost=lost)


def _packages_key(packages: HostPackages, names: tuple[str, ...]) -> tuple[object, ...]:
    """What decides the pinned builds and the rollback's holds: offered, installed and held, per package."""
    return (packages.manager, *((packages.available.get(n, ()), packages.installed.get(n), n in packages.held)
                                for n in names))


def _rollback_steps(finder: OrderFinder, hw: Hardware, current: SoftwareStack, target: SoftwareStack,
                    gates: tuple[Gate, ...], policy: RolloutPolicy) -> tuple[Step, ...]:
    """The steps back from ``target`` to ``current``, ordered by the same search (libraries first)."""
    back = finder.order(hw, target, current)
    return ordered_steps(step_graph(target, current, back, gates, policy.estimates, prefix="rb-", precheck=False))


def prepare(fleet_hosts: tuple[Host, ...], classifier: Classifier, unknown: list[UnknownHost],
            exclude_invalid: bool) -> Prepared:
    """Every host into its class, in name order; hosts without facts are excluded and count as down."""
    p = Prepared()
    c = classifier
    for host in sorted(fleet_hosts, key=lambda h: h.name):
        hw, base = c.base(host)
        pool = host.pool
        domains = tuple(host.domains.items())
        if pool not in c.desired.pools:
            reason = f"pool {pool} has no target in the desired state"
            p.excluded.append(Excluded(host=host.name, pool=pool, kind="no-target", reason=reason))
            p.rows.append((host.name, c.left_alone(host, base, "no-target", reason), domains))
            continue
        if pool in c.frozen:
            reason = "its pool is frozen (max_unavailable resolves to 0)"
            p.excluded.append(Excluded(host=host.name, pool=pool, kind="frozen", reason=reason))
            p.rows.append((host.name, c.left_alone(host, base, "frozen", reason), domains))
            continue
        if host.cordoned_by_hand and not c.rules[pool].include_cordoned:
            p.excluded.append(Excluded(host=host.name, pool=pool, kind="cordoned",
                                       reason=f"cordoned by hand: {host.cordon_reason or 'no reason given'}"))
            p.out_of_service.setdefault(pool, []).append(host.name)
            p.rows.append((host.name, c.left_alone(host, base, "cordoned", "cordoned by hand"), domains))
            continue
        judged = c.judge(host, hw, base)
        if judged.noop:
            p.rows.append((host.name, c.noop(host, base, judged), domains))
            continue
        if judged.errors:
            if not exclude_invalid:
                p.invalid.extend(f"{host.name} ({pool}): target {v.rule}: {v.message}" for v in judged.errors)
                continue
            index = c.invalid(host, base, judged)
            p.excluded.append(Excluded(host=host.name, pool=pool, kind="invalid-target",
                                       reason="; ".join(f"{v.rule}: {v.message}" for v in judged.errors)))
            p.rows.append((host.name, index, domains))
            continue
        pinned = c.upgrade(host, base, judged)
        p.rows.append((host.name, pinned.index, domains))
        if pinned.excluded is not None:
            p.excluded.append(Excluded(host=host.name, pool=pool, kind="no-build", reason=pinned.excluded[1]))
            continue
        p.warnings.extend(f"{host.name}: rollback impossible: {line}" for line in pinned.lost)
        p.movers.append(Mover(host.name, pool, host.gpu.name, host.gpu_count, domains, pinned.index))
    for u in sorted(unknown, key=lambda u: u.name):
        p.excluded.append(Excluded(host=u.name, pool=u.pool, kind="unknown", reason=u.reason))
        p.out_of_service.setdefault(u.pool, []).append(u.name)
    return p
