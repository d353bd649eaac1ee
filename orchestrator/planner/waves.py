"""Group the hosts to upgrade into waves: a canary, then growing waves, never past a pool's or a domain's limit.

Canary: per (pool, GPU model) the pool's ``canary`` size, chosen to spread over racks, switches and NVLink
domains (fewest already chosen in the host's domains, then by name). Later waves take sizes from the
policy's ``waves`` list (a count, or a percent of the hosts left after the canary; the last value repeats,
as Ansible's ``serial``) or from ``growth`` (each wave that many times the previous one). A host joins a
wave only if its pool stays within ``max_unavailable`` (hosts already out of service count) and each of
its failure domains within ``max_per_domain``. A pool that must not run mixed versions moves in one wave
and gets no canary. Hosts are visited in an order that alternates pools and racks, so waves spread out.
"""

from __future__ import annotations

import math
from collections import Counter
from dataclasses import dataclass

from orchestrator.model.policy import PoolRules, RolloutPolicy, resolve


@dataclass(frozen=True)
class Mover:
    """What the wave builder needs of a host to upgrade."""

    name: str
    pool: str
    gpu: str
    gpu_count: int
    domains: tuple[tuple[str, str], ...]


@dataclass(frozen=True)
class PoolLimits:
    """A pool's resolved limits: hosts it may have down at once (after those already out) and per domain."""

    pool_size: int
    max_unavailable: int
    out_of_service: int
    per_domain: dict[str, int]

    @property
    def free(self) -> int:
        return self.max_unavailable - self.out_of_service

    @property
    def frozen(self) -> bool:
        """``max_unavailable: 0`` (or a percent that resolves to none): the pool is not touched at all."""
        return self.max_unavailable == 0


def pool_limits(rules: PoolRules, pool_size: int, out_of_service: int) -> PoolLimits:
    return PoolLimits(pool_size, resolve(rules.max_unavailable, pool_size, "down"), out_of_service,
                      dict(rules.max_per_domain))


class _Wave:
    """A wave being filled, with its per-pool and per-domain counts."""

    def __init__(self, limits: dict[str, PoolLimits]) -> None:
        self.limits = limits
        self.hosts: list[Mover] = []
        self.per_pool: Counter[str] = Counter()
        self.per_domain: Counter[tuple[str, str]] = Counter()
        self.domain_cap: dict[tuple[str, str], int] = {}

    def fits(self, group: list[Mover]) -> bool:
        add_pool = Counter(m.pool for m in group)
        if any(self.per_pool[p] + n > self.limits[p].free for p, n in add_pool.items()):
            return False
        add_dom: Counter[tuple[str, str]] = Counter(d for m in group for d in m.domains)
        caps = dict(self.domain_cap)
        for m in group:
            for d in m.domains:
                cap = self.limits[m.pool].per_domain.get(d[0])
                if cap is not None:
                    caps[d] = min(caps.get(d, cap), cap)
        return all(self.per_domain[d] + n <= caps[d] for d, n in add_dom.items() if d in caps)

    def add(self, group: list[Mover]) -> None:
        for m in group:
            self.hosts.append(m)
            self.per_pool[m.pool] += 1
            for d in m.domains:
                self.per_domain[d] += 1
                cap = self.limits[m.pool].per_domain.get(d[0])
                if cap is not None:
                    self.domain_cap[d] = min(self.domain_cap.get(d, cap), cap)

    def spread_score(self, m: Mover) -> int:
        return sum(self.per_domain[d] for d in m.domains)


def _spread_order(movers: list[Mover]) -> list[Mover]:
    """Alternate racks within a pool and pools across the fleet: waves then draw from everywhere."""
    per_pool: dict[str, list[Mover]] = {}
    for m in sorted(movers, key=lambda m: (m.pool, m.name)):
        per_pool.setdefault(m.pool, []).append(m)
    interleaved_pools = []
    for pool in sorted(per_pool):
        racks: dict[str, list[Mover]] = {}
        for m in per_pool[pool]:
            rack = dict(m.domains).get("rack") or dict(m.domains).get("switch") or ""
            racks.setdefault(rack, []).append(m)
        interleaved_pools.append(_round_robin([racks[r] for r in sorted(racks)]))
    return _round_robin(interleaved_pools)


def _round_robin(lists: list[list[Mover]]) -> list[Mover]:
    out: list[Mover] = []
    for i in range(max((len(x) for x in lists), default=0)):
        out.extend(x[i] for x in lists if i < len(x))
    return out


def build_waves(
    movers: list[Mover],
    rules: dict[str, PoolRules],
    limits: dict[str, PoolLimits],
    policy: RolloutPolicy,
    atomic: set[str],
) -> tuple[list[list[Mover]], list[str], bool]:
    """Waves of hosts (canary first, if any), the reasons no valid grouping exists, whether there is a canary."""
    reasons = []
    by_pool = Counter(m.pool for m in movers)
    for pool, count in sorted(by_pool.items()):
        lim = limits[pool]
        if lim.free <= 0:
            reasons.append(f"pool {pool}: max_unavailable {lim.max_unavailable} is used up by "
                           f"{lim.out_of_service} host(s) already out of service; no host can be upgraded")
        elif pool in atomic and count > lim.free:
            reasons.append(f"pool {pool}: must move in one wave (its mixed_versions policy) but {count} hosts "
                           f"exceed max_unavailable {lim.max_unavailable} minus {lim.out_of_service} out of service")
    for pool, lim in sorted(limits.items()):
        for kind, cap in sorted(lim.per_domain.items()):
            if cap < 1:
                reasons.append(f"pool {pool}: max_per_domain {kind} is {cap}; no host could ever move")
    if reasons:
        return [], reasons, False

    waves: list[list[Mover]] = []
    canary = _canary(movers, rules, limits, atomic)
    if canary:
        waves.append(canary)
    chosen = {m.name for m in canary}
    rest = [m for m in _spread_order(movers) if m.name not in chosen]
    # Atomic pools travel as one block at the position of their first host.
    items: list[list[Mover]] = []
    blocks: dict[str, list[Mover]] = {}
    for m in rest:
        if m.pool in atomic:
            if m.pool not in blocks:
                blocks[m.pool] = []
                items.append(blocks[m.pool])
            blocks[m.pool].append(m)
        else:
            items.append([m])
    sizes = _SizeIter(policy, len(rest), len(canary))
    while items:
        size = next(sizes)
        wave = _Wave(limits)
        left: list[list[Mover]] = []
        for item in items:
            room = len(wave.hosts) + len(item) <= size or not wave.hosts
            if len(wave.hosts) < size and room and wave.fits(item):
                wave.add(item)
            else:
                left.append(item)
        if not wave.hosts:
            stuck = left[0]
            if len(stuck) > 1:
                return [], [f"pool {stuck[0].pool}: must move in one wave (its mixed_versions policy) but its "
                            f"{len(stuck)} hosts exceed max_per_domain in one of their failure domains"], False
            return [], [f"{stuck[0].name}: fits no wave under max_unavailable / max_per_domain"], False
        waves.append(sorted(wave.hosts, key=lambda m: m.name))
        items = left
    return waves, [], bool(canary)


def _canary(movers: list[Mover], rules: dict[str, PoolRules], limits: dict[str, PoolLimits],
            atomic: set[str]) -> list[Mover]:
    groups: dict[tuple[str, str], list[Mover]] = {}
    for m in sorted(movers, key=lambda m: m.name):
        if m.pool not in atomic:
            groups.setdefault((m.pool, m.gpu), []).append(m)
    want = {g: min(resolve(rules[g[0]].canary, len(hosts), "up"), len(hosts)) for g, hosts in groups.items()}
    wave = _Wave(limits)
    for rnd in range(max(want.values(), default=0)):
        for g in sorted(groups):
            if rnd >= want[g]:
                continue
            taken = {m.name for m in wave.hosts}
            options = sorted((m for m in groups[g] if m.name not in taken),
                             key=lambda m: (wave.spread_score(m), m.name))
            pick = next((m for m in options if wave.fits([m])), None)
            if pick is not None:
                wave.add([pick])
    return sorted(wave.hosts, key=lambda m: m.name)


class _SizeIter:
    """Wave sizes forever: the ``waves`` list with its last value repeated, or geometric ``growth``."""

    def __init__(self, policy: RolloutPolicy, base: int, canary: int) -> None:
        self.policy = policy
        self.base = base
        self.index = 0
        self.prev = max(canary, 1)

    def __iter__(self) -> _SizeIter:
        return self

    def __next__(self) -> int:
        if self.policy.growth is not None:
            size = max(math.ceil(self.prev * self.policy.growth - 1e-9), 1)
            self.prev = size
            return size
        sizes = self.policy.wave_sizes()
        value = sizes[min(self.index, len(sizes) - 1)]
        self.index += 1
        return max(resolve(value, self.base, "up"), 1)
