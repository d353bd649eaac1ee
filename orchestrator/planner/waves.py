"""Group the hosts to upgrade into waves: a canary, then growing waves, never past a pool's or a domain's limit.

Canary: per (pool, GPU model) the pool's ``canary`` size, chosen to spread over racks, switches and NVLink
domains (fewest already chosen in the host's domains), then, when the scheduler's job ends are given
(``free_in``), the host free soonest (idle first, a job without an end last), then by name: the canary's
drain is a wait that every host after it pays too. Later waves take sizes from the
policy's ``waves`` list (a count, or a percent of the hosts left after the canary; the last value repeats,
as Ansible's ``serial``) or from ``growth`` (each wave that many times the previous one). A host joins a
wave only if its pool stays within ``max_unavailable`` (hosts already out of service count) and each of
its failure domains within ``max_per_domain``. A pool that must not run mixed versions moves in one wave
and gets no canary. Hosts are visited in an order that alternates pools and racks, so waves spread out.

Each host (or atomic block) goes, in that order, to the first wave it fits, a new wave when none does: one
first-fit pass. Per pool and per failure domain a pointer skips the waves already full for it, so the pass
stays near linear in the number of hosts.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Mapping
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
    cls: int = 0


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
        if len(group) == 1:
            return self._fits_one(group[0])
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

    def _fits_one(self, m: Mover) -> bool:
        lim = self.limits[m.pool]
        if self.per_pool[m.pool] + 1 > lim.free:
            return False
        for d in m.domains:
            cap = lim.per_domain.get(d[0])
            held = self.domain_cap.get(d)
            if held is not None:
                cap = held if cap is None else min(cap, held)
            if cap is not None and self.per_domain[d] + 1 > cap:
                return False
        return True

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
            racks.setdefault(_rack(m.domains), []).append(m)
        interleaved_pools.append(_round_robin([racks[r] for r in sorted(racks)]))
    return _round_robin(interleaved_pools)


def _rack(domains: tuple[tuple[str, str], ...]) -> str:
    """The host's rack, else its switch, else nothing (what the spread order alternates over)."""
    found = dict(domains)
    return found.get("rack") or found.get("switch") or ""


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
    free_in: Mapping[str, float] | None = None,
) -> tuple[list[list[Mover]], list[str], bool]:
    """Waves of hosts (canary first, if any), the reasons no valid grouping exists, whether there is a canary.

    ``free_in``: seconds until each host's running jobs are expected to end (``math.inf``: a job without an
    expected end; absent: no job); only the canary's choice reads it.
    """
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
    canary = _canary(movers, rules, limits, atomic, free_in or {})
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
    filled, stuck = _first_fit(items, sizes, limits)
    if stuck is not None:
        if len(stuck) > 1:
            return [], [f"pool {stuck[0].pool}: must move in one wave (its mixed_versions policy) but its "
                        f"{len(stuck)} hosts exceed max_per_domain in one of their failure domains"], False
        return [], [f"{stuck[0].name}: fits no wave under max_unavailable / max_per_domain"], False
    waves.extend(sorted(w.hosts, key=lambda m: m.name) for w in filled)
    return waves, [], bool(canary)


def _first_fit(items: list[list[Mover]], sizes: _SizeIter,
               limits: dict[str, PoolLimits]) -> tuple[list[_Wave], list[Mover] | None]:
    """Each item into the first wave with room that it fits, else a new wave; the first item no wave takes.

    Same waves as filling one wave at a time from the items left by the previous ones: an item meets, in
    each wave, exactly the items before it that went there.
    """
    waves: list[_Wave] = []
    size: list[int] = []
    open_from = 0  # waves before it are full (their size reached)
    skip: dict[object, int] = {}  # per pool and per domain: waves before it are full for that key
    for item in items:
        start = open_from
        for m in item:
            start = max(start, skip.get(m.pool, 0), *(skip.get(d, 0) for d in m.domains))
        placed = None
        for k in range(start, len(waves)):
            w = waves[k]
            if len(w.hosts) < size[k] and (len(w.hosts) + len(item) <= size[k]) and w.fits(item):
                placed = k
                break
        if placed is None:
            w = _Wave(limits)
            if not w.fits(item):
                return waves, item
            waves.append(w)
            size.append(next(sizes))
            placed = len(waves) - 1
        waves[placed].add(item)
        # only the wave just filled changed: pointers that stop at it may move on
        while open_from < len(waves) and len(waves[open_from].hosts) >= size[open_from]:
            open_from += 1
        for m in item:
            for key in (m.pool, *m.domains):
                k = skip.get(key, 0)
                if k != placed:
                    continue
                while k < len(waves) and _full(waves[k], m, key):
                    k += 1
                skip[key] = k
    return waves, None


def _full(wave: _Wave, m: Mover, key: object) -> bool:
    if key == m.pool:
        return wave.per_pool[m.pool] >= wave.limits[m.pool].free
    d = key
    return d in wave.domain_cap and wave.per_domain[d] >= wave.domain_cap[d]


def _canary(movers: list[Mover], rules: dict[str, PoolRules], limits: dict[str, PoolLimits],
            atomic: set[str], free_in: Mapping[str, float]) -> list[Mover]:
    groups: dict[tuple[str, str], list[Mover]] = {}
    for m in sorted(movers, key=lambda m: m.name):
        if m.pool not in atomic:
            groups.setdefault((m.pool, m.gpu), []).append(m)
    want = {g: min(resolve(rules[g[0]].canary, len(hosts), "up"), len(hosts)) for g, hosts in groups.items()}
    wave = _Wave(limits)

    def key(m: Mover) -> tuple[int, float, str]:
        return wave.spread_score(m), free_in.get(m.name, 0.0), m.name

    for rnd in range(max(want.values(), default=0)):
        for g in sorted(groups):
            if rnd >= want[g]:
                continue
            taken = {m.name for m in wave.hosts}
            options = [m for m in groups[g] if m.name not in taken]
            if not options:
                continue
            best = min(options, key=key)
            if wave.fits([best]):  # the first in (spread, free, name) order that fits is the best one, if it fits
                pick: Mover | None = best
            else:
                options.sort(key=key)
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


def stage_sizes(policy: RolloutPolicy, base: int, canary: int) -> list[int]:
    """The policy's growing stages after the canary (``waves`` or ``growth``), until they cover ``base`` hosts.

    In a flowing rollout these bound how many hosts may be started and not yet proven (gates passed and
    soaked): the ``j``-th size once the hosts of the stages before it are resolved.
    """
    sizes: list[int] = []
    it = _SizeIter(policy, base, canary)
    while sum(sizes) < base:
        sizes.append(next(it))
    return sizes
