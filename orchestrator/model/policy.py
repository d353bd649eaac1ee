"""The rollout policy: how fast, how wide and when an upgrade may move (the ``policy`` of a desired state).

Strict like every input model. A top-level ``policy`` sets the defaults; a pool's own ``policy`` overrides
the per-pool fields. Sizes are a count (``2``) or a percent (``"10%"``); durations are seconds (``900``) or
text (``"15m"``, ``"1h30m"``). Format and defaults: docs/desired-state.md.

Example::

    policy:
      canary: 1
      waves: [1, "10%", "50%", "100%"]
      max_unavailable: "25%"
      max_per_domain: {rack: 2}
      windows: [{days: [sat, sun], start: "22:00", end: "06:00", timezone: Europe/Berlin}]
      soak: 30m
"""

from __future__ import annotations

import math
import re
from datetime import time
from enum import StrEnum
from typing import Annotated, Literal, Self
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import AfterValidator, BeforeValidator, Field, StringConstraints, model_validator

from orchestrator.model.stack import StrictModel

_PERCENT = re.compile(r"^(\d+(?:\.\d+)?)%$")
_CLOCK = re.compile(r"^([01]?\d|2[0-3]):([0-5]\d)(?::([0-5]\d))?$")
# Bounds on every number that feeds a loop or a date, so no policy can make the planner spin or overflow.
MAX_COUNT = 1_000_000
MAX_DURATION_S = 30 * 24 * 3600
NOTIFY_TARGET = r"^(https?://[^\s/]+\S*|env:[A-Za-z_][A-Za-z0-9_]*)$"  # a webhook URL or env:NAME
_DURATION = re.compile(r"^(?:(\d+)d)?(?:(\d+)h)?(?:(\d+)m)?(?:(\d+)s)?$")
Day = Literal["mon", "tue", "wed", "thu", "fri", "sat", "sun"]
DAYS: tuple[Day, ...] = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")


def _check_size(value: int | str) -> int | str:
    if isinstance(value, bool):
        raise ValueError("expected a count (2) or a percent ('10%')")
    if isinstance(value, int):
        if value < 0:
            raise ValueError("a count cannot be negative")
        if value > MAX_COUNT:
            raise ValueError(f"{value} is more than {MAX_COUNT} hosts")
        return value
    text = value.strip()
    if text.isdigit():
        if len(text) > 9:
            raise ValueError(f"{text[:12]}... is more than {MAX_COUNT} hosts")
        return _check_size(int(text))
    m = _PERCENT.match(text)
    if not m or float(m.group(1)) > 100:
        raise ValueError(f"{value!r} is not a count (2) or a percent up to 100 ('10%')")
    return text


def _parse_duration(value: object) -> int:
    seconds = _duration_seconds(value)
    if seconds > MAX_DURATION_S:
        raise ValueError(f"{value!r} is longer than {MAX_DURATION_S // 86400} days")
    return seconds


def _duration_seconds(value: object) -> int:
    if isinstance(value, bool):
        raise ValueError("expected seconds (900) or a duration ('15m', '1h30m')")
    if isinstance(value, int):
        if value < 0:
            raise ValueError("a duration cannot be negative")
        return value
    if isinstance(value, str):
        text = value.strip().replace(" ", "")
        if len(text) > 32:
            raise ValueError(f"{value[:32]!r}... is not a duration")
        if text.isdigit():
            return int(text)
        m = _DURATION.match(text)
        if text and m:
            d, h, mins, s = (int(g or 0) for g in m.groups())
            return ((d * 24 + h) * 60 + mins) * 60 + s
    raise ValueError(f"{value!r} is not a duration (seconds, or text such as '15m', '1h30m', '2d')")


def _size_type(value: object) -> object:
    if isinstance(value, bool) or not isinstance(value, (int, str)):
        raise ValueError(f"expected a count (2) or a percent ('10%'), got {str(value)[:20]!r}")
    return value


def _count(value: object) -> object:
    if isinstance(value, bool) or not isinstance(value, int):
        raise ValueError(f"expected a whole number, got {str(value)[:20]!r}")
    if not 0 <= value <= MAX_COUNT:
        raise ValueError(f"{value} is not between 0 and {MAX_COUNT}")
    return value


def _factor(value: object) -> object:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise ValueError(f"expected a number such as 2 or 1.5, got {str(value)[:20]!r}")
    if not (math.isfinite(value) and 1 < value <= 100):
        raise ValueError(f"{value} is not a factor above 1 and at most 100")
    return float(value)


# A count of hosts or a percent of some total ("10%"); resolved by `resolve`.
Size = Annotated[int | str, BeforeValidator(_size_type), AfterValidator(_check_size)]
# Seconds; YAML may say 900 or "15m".
Duration = Annotated[int, BeforeValidator(_parse_duration)]


def resolve(size: int | str, total: int, rounding: Literal["up", "down"]) -> int:
    """The one resolver of sizes and limits against a total; planner and executor both use it.

    Zero means zero: ``0`` and ``"0%"`` give 0. A count is taken as given, capped at the total. A percent
    rounds up (wave and canary sizes, like Ansible's ``serial``) or down (limits and failure budgets, like
    Kubernetes' ``maxUnavailable``), but a percent above zero of a non-empty total is at least one host.
    """
    if isinstance(size, int):
        return min(size, total)
    share = float(size.rstrip("%")) * total / 100
    n = math.ceil(share - 1e-9) if rounding == "up" else math.floor(share + 1e-9)
    if share > 0 and total > 0:
        n = max(n, 1)
    return min(n, total)


class Gate(StrEnum):
    """Validation run on a host after its upgrade (estimates in :class:`Estimates`)."""

    DCGM_R1 = "dcgm-r1"
    DCGM_R2 = "dcgm-r2"
    DCGM_R3 = "dcgm-r3"
    NCCL_TESTS = "nccl-tests"


class Mixing(StrEnum):
    """May a pool's hosts run different versions of a component while the rollout is under way."""

    ALLOW = "allow"
    FORBID = "forbid"


class DrainPolicy(StrictModel):
    """Wait for running jobs up to ``timeout``, then evict them or give up on the host (it is left as it was)."""

    timeout: Duration = 3600
    on_timeout: Literal["evict", "give-up"] = "give-up"


class FailureBudget(StrictModel):
    """How many hosts may fail before the rollout halts: per wave (count or percent of it) and in total.

    Past the budget the run halts and rolls back the failed hosts, or with ``on_exceed: rollback-wave``
    every host of the wave.
    """

    per_wave: Size = 0
    total: Size = 0
    on_exceed: Literal["rollback-failed", "rollback-wave"] = "rollback-failed"


def _check_tz(name: str) -> str:
    try:
        ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError, OSError) as exc:
        raise ValueError(f"unknown time zone {name[:64]!r}") from exc
    return name


def _clock(value: object) -> object:
    """``"22:00"`` only: YAML reads an unquoted 22:00 as the number 1320 and 2200 is no time either."""
    if isinstance(value, time):
        return value
    if not isinstance(value, str):
        raise ValueError(f"{value!r} is not a time of day: write it quoted, as \"22:00\" (YAML reads 22:00 "
                         "unquoted as a number)")
    m = _CLOCK.match(value.strip())
    if not m:
        raise ValueError(f"{value[:20]!r} is not a time of day (HH:MM, such as \"22:00\")")
    return time(int(m.group(1)), int(m.group(2)), int(m.group(3) or 0))


Clock = Annotated[time, BeforeValidator(_clock)]


class MaintenanceWindow(StrictModel):
    """A recurring window (local time; ``end`` before ``start`` runs past midnight) in which waves may run."""

    days: tuple[Day, ...] = Field(default=DAYS, min_length=1)
    start: Clock
    end: Clock
    timezone: Annotated[str, AfterValidator(_check_tz)] = "UTC"

    @model_validator(mode="after")
    def _not_empty(self) -> Self:
        if self.start == self.end:
            raise ValueError(f"start and end are both {self.start:%H:%M}: an empty window (a whole day is "
                             "\"00:00\" to \"23:59\")")
        return self

    def label(self) -> str:
        days = ",".join(self.days) if tuple(self.days) != DAYS else "daily"
        return f"{days} {self.start:%H:%M}-{self.end:%H:%M} {self.timezone}"


class Estimates(StrictModel):
    """Seconds each step kind takes, for wave durations and window fitting; override per site."""

    precheck: Duration = 60
    cordon: Duration = 30
    drain: Duration = 600
    driver: Duration = 300
    kernel_module: Duration = 60
    fabric_manager: Duration = 120
    cuda: Duration = 300
    cudnn: Duration = 120
    nccl: Duration = 60
    container_toolkit: Duration = 60
    dcgm: Duration = 60
    kernel: Duration = 180
    reboot: Duration = 300
    verify: Duration = 60
    uncordon: Duration = 30
    gates: dict[Gate, Duration] = Field(
        default_factory=lambda: {Gate.DCGM_R1: 60, Gate.DCGM_R2: 150, Gate.DCGM_R3: 900, Gate.NCCL_TESTS: 300}
    )

    def gate(self, gate: Gate) -> int:
        return self.gates.get(gate, Estimates().gates[gate])


DomainKind = Literal["rack", "switch", "nvlink_domain"]


def _domain_limits(value: object) -> object:
    """``2`` for every kind of domain, or ``{rack: 2, switch: 4}``."""
    if isinstance(value, dict):
        return {k: _count(v) for k, v in value.items()}
    return _count(value)


DomainLimits = Annotated[int | dict[DomainKind, int], BeforeValidator(_domain_limits)]


class WorkloadGate(StrictModel):
    """A pool's own proof that its jobs run: a command, or a container image run through the host's runtime
    with the NVIDIA container toolkit (``docker run --gpus all`` / ``podman run --device nvidia.com/gpu=all``).

    Passes when it exits with ``expect_rc`` within ``timeout_s``; its time is a figure (``workload_s``). The
    command is an argv list, never a shell line: ``["/opt/venv/bin/python", "-c", "import torch; ..."]``.
    """

    command: tuple[Annotated[str, StringConstraints(pattern=r"^[^\x00-\x1f\x7f{}$`]{1,400}$")], ...] = Field(
        default=(), max_length=64, description="argv; in the image when `image` is given")
    image: Annotated[str, StringConstraints(pattern=r"^[A-Za-z0-9][A-Za-z0-9._/:@-]{0,254}$")] | None = None
    runtime: Literal["docker", "podman"] = "docker"
    timeout_s: int = Field(default=600, ge=1, le=86400)
    expect_rc: int = Field(default=0, ge=0, le=255)

    @model_validator(mode="after")
    def _something_to_run(self) -> Self:
        if not self.command and self.image is None:
            raise ValueError("a workload gate needs a `command` or an `image`")
        return self


class PoolPolicy(StrictModel):
    """The fields a pool may set for itself; ``None`` takes the top-level policy's value."""

    canary: Size | None = None
    max_unavailable: Size | None = None
    max_per_domain: DomainLimits | None = None
    drain: DrainPolicy | None = None
    gates: tuple[Gate, ...] | None = None
    mixed_versions: dict[str, Mixing | Duration] | None = None
    include_cordoned: bool | None = None
    # left out of dumps when unset, so plans and fingerprints without one stay byte-identical
    workload_gate: WorkloadGate | None = Field(default=None, exclude_if=lambda v: v is None)


class RolloutPolicy(StrictModel):
    """The whole policy; ``resolved(pool_override)`` gives one pool's effective rules."""

    canary: Size = Field(default=1, description="hosts per (pool, GPU model) in the canary wave")
    waves: tuple[Size, ...] | None = Field(
        default=None, description="later wave sizes of the hosts left after the canary; the last repeats"
    )
    growth: Annotated[float, BeforeValidator(_factor)] | None = Field(
        default=None, description="instead of waves: each wave this many times the last")
    max_unavailable: Size = "25%"
    max_per_domain: DomainLimits | None = None
    windows: tuple[MaintenanceWindow, ...] = ()
    soak: Duration = 1800
    failure_budget: FailureBudget = FailureBudget()
    drain: DrainPolicy = DrainPolicy()
    include_cordoned: bool = False
    gates: tuple[Gate, ...] = (Gate.DCGM_R1,)
    unreachable_retry: Duration = Field(
        default=300, le=86400,
        description="how long a step whose host is unreachable is retried (with backoff) before it fails",
    )
    straggler_threshold: float = Field(
        default=0.8, gt=0, le=1,
        description="a host whose health figure is below this share of its own baseline or of the wave median fails",
    )
    mixed_versions: dict[str, Mixing | Duration] = Field(
        default_factory=dict, description="component -> allow | forbid | longest time the pool may be mixed"
    )
    estimates: Estimates = Estimates()
    workload_gate: WorkloadGate | None = Field(
        default=None, exclude_if=lambda v: v is None,
        description="run after the gates on every host (a pool's own overrides it)")
    notify: tuple[Annotated[str, StringConstraints(pattern=NOTIFY_TARGET)], ...] = Field(
        default=(), description="webhooks told of waves passed, hosts rolled back or quarantined, the run's end: "
                                "http(s) URLs, or env:NAME for one kept in the environment (webhook URLs are secrets)",
    )

    @model_validator(mode="after")
    def _waves_or_growth(self) -> Self:
        if self.waves is not None and self.growth is not None:
            raise ValueError("give `waves` or `growth`, not both")
        if self.waves is not None and not self.waves:
            raise ValueError("`waves` needs at least one size")
        if self.waves is not None and any(resolve(w, 100, "up") == 0 for w in self.waves):
            raise ValueError("`waves`: a wave size of 0 would never finish; give sizes above zero")
        _check_components(self.mixed_versions)
        return self

    def wave_sizes(self) -> tuple[int | str, ...]:
        return self.waves if self.waves is not None else ("25%", "50%", "100%")

    def resolved(self, override: PoolPolicy | None) -> PoolRules:
        """One pool's rules: the override's fields where set, this policy's otherwise."""
        o = override or PoolPolicy()
        _check_components(o.mixed_versions or {})
        per_domain = self.max_per_domain if o.max_per_domain is None else o.max_per_domain
        if isinstance(per_domain, int):
            domain_limits: dict[str, int] = {k: per_domain for k in ("rack", "switch", "nvlink_domain")}
        else:
            domain_limits = {str(k): v for k, v in (per_domain or {}).items()}
        return PoolRules(
            canary=self.canary if o.canary is None else o.canary,
            max_unavailable=self.max_unavailable if o.max_unavailable is None else o.max_unavailable,
            max_per_domain=domain_limits,
            drain=o.drain or self.drain,
            gates=self.gates if o.gates is None else o.gates,
            mixed_versions={**self.mixed_versions, **(o.mixed_versions or {})},
            include_cordoned=self.include_cordoned if o.include_cordoned is None else o.include_cordoned,
            workload_gate=o.workload_gate or self.workload_gate,
        )


class PoolRules(StrictModel):
    """Effective per-pool rules after merging the pool's override into the top-level policy."""

    canary: Size
    max_unavailable: Size
    max_per_domain: dict[str, int]
    drain: DrainPolicy
    gates: tuple[Gate, ...]
    mixed_versions: dict[str, Mixing | Duration]
    include_cordoned: bool
    workload_gate: WorkloadGate | None = Field(default=None, exclude_if=lambda v: v is None)

    def mixing(self, component: str) -> Mixing | int:
        return self.mixed_versions.get(component, Mixing.ALLOW)


MIXABLE = ("driver", "kernel_module", "cuda", "cudnn", "nccl", "fabric_manager", "container_toolkit", "dcgm")


def _check_components(mixed: dict[str, Mixing | int]) -> None:
    bad = sorted(set(mixed) - set(MIXABLE))
    if bad:
        raise ValueError(f"mixed_versions: unknown component {bad[0]} (known: {', '.join(MIXABLE)})")
