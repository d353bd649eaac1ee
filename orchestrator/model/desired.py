"""The desired-state document: per pool, the target stack and the workloads it must keep running.

Strict (unknown keys are errors) and versioned (``version: 1``) so later sections (the planner's
``policy``) can be added without breaking old files. Format: docs/desired-state.md.

Example::

    version: 1
    pools:
      train_h100:
        target: {driver: "580.95.05", kernel_module: open, cuda: "13.0", fabric_manager: "580.95.05"}
        workloads:
          - {name: llm-train, framework: "pytorch==2.9.1+cu130"}
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

from pydantic import Field

from orchestrator.errors import InputError
from orchestrator.knowledge.findings import Workload
from orchestrator.loading import parse_yaml, read_text, validate
from orchestrator.model.policy import PoolPolicy, PoolRules, RolloutPolicy
from orchestrator.model.stack import FormatVersion, KernelModuleFlavor, SoftwareStack, StrictModel
from orchestrator.model.versions import (
    ComponentVersion,
    CudaVersion,
    CudnnVersion,
    DriverVersion,
    KernelVersion,
    NcclVersion,
)


class DesiredStateError(InputError):
    """The desired-state file is missing, not YAML, or does not fit the schema."""


class TargetStack(StrictModel):
    """What a pool should run; a component left out is not managed (the host keeps what it has)."""

    driver: DriverVersion | None = None
    kernel_module: KernelModuleFlavor | None = None
    cuda: CudaVersion | None = None
    cudnn: CudnnVersion | None = None
    nccl: NcclVersion | None = None
    fabric_manager: DriverVersion | None = None
    container_toolkit: ComponentVersion | None = None
    dcgm: ComponentVersion | None = None
    kernel: KernelVersion | None = Field(
        default=None, description="the kernel release hosts boot (`uname -r`), installed with its NVIDIA module; "
        "left out, the kernel is not managed (hygiene holds it)")

    def applied_to(self, current: SoftwareStack) -> SoftwareStack:
        """The stack a host will have after the upgrade: its current one with the managed parts replaced."""
        managed = {k: v for k, v in self.model_dump(exclude_none=True).items()}
        return current.model_copy(update={k: getattr(self, k) for k in managed})


class PoolTarget(StrictModel):
    """One pool's target, whether it is production, and the workloads that must keep running."""

    target: TargetStack
    production: bool = Field(default=True, description="new-feature driver branches are warned about")
    cuda_compat: bool = Field(
        default=False, description="hosts carry a cuda-compat forward-compatibility package"
    )
    workloads: tuple[Workload, ...] = ()
    policy: PoolPolicy | None = Field(default=None, description="overrides of the top-level rollout policy")


class DesiredState(StrictModel):
    """The whole document; ``policy`` (optional) tells the planner how to roll the targets out."""

    version: FormatVersion = 1
    pools: dict[str, PoolTarget] = Field(min_length=1)
    policy: RolloutPolicy | None = Field(default=None, description="rollout policy for the planner")
    pool_groups: dict[Annotated[str, Field(min_length=1, max_length=253)],
                      Annotated[str, Field(min_length=1, max_length=253)]] = Field(
        default={}, description="inventory group -> pool, for hosts without upgrade_pool (DeepOps: slurm-node)")

    def rules_for(self, pool: str, policy: RolloutPolicy | None = None) -> PoolRules:
        """A pool's effective rollout rules: ``policy`` (else this document's, else defaults) plus its override."""
        base = policy or self.policy or RolloutPolicy()
        entry = self.pools.get(pool)
        return base.resolved(entry.policy if entry else None)


def parse_desired(text: str, where: str = "<desired state>") -> DesiredState:
    """Validate YAML text; any problem is one line naming ``where`` and the first error."""
    data = parse_yaml(text, where, DesiredStateError)
    if not isinstance(data, dict):
        raise DesiredStateError(where, "expected a mapping with `version` and `pools`")
    return validate(DesiredState, data, where, DesiredStateError)


def load_desired(path: str | Path) -> DesiredState:
    """Read and validate a desired-state file."""
    return parse_desired(read_text(path, DesiredStateError), str(path))
