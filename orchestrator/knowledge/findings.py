"""What the rules take (hardware, stack, context) and what they give back (violations)."""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import date
from enum import StrEnum

from pydantic import BaseModel, ConfigDict, Field, model_validator

from orchestrator.model.gpus import GpuModel
from orchestrator.model.stack import Host
from orchestrator.model.versions import CudaVersion

_CU_TAG = re.compile(r"\+cu(\d{2,3})$")


class Severity(StrEnum):
    ERROR = "error"
    WARNING = "warning"


class Violation(BaseModel):
    """One finding: a stable rule id, severity, a one-line message, the fix where obvious, the source."""

    model_config = ConfigDict(frozen=True, extra="forbid")
    rule: str
    severity: Severity
    message: str
    fix: str | None = None
    source: str
    unverified: bool = False
    subject: str | None = Field(default=None, description="host or workload the finding is about")

    def about(self, subject: str) -> Violation:
        return self.model_copy(update={"subject": subject})


class Workload(BaseModel):
    """A job the pool runs: a framework build or container image and the CUDA it was built with."""

    model_config = ConfigDict(frozen=True, extra="forbid", populate_by_name=True)
    name: str = Field(min_length=1)
    framework: str | None = Field(default=None, description="e.g. pytorch==2.9.1+cu128")
    image: str | None = Field(default=None, description="e.g. nvcr.io/nvidia/pytorch:25.01-py3")
    cuda: CudaVersion | None = None

    @model_validator(mode="after")
    def _something_to_check(self) -> Workload:
        if self.framework is None and self.image is None and self.cuda is None:
            raise ValueError(f"workload {self.name!r}: give framework, image or cuda")
        return self

    def framework_parts(self) -> tuple[str, str] | None:
        """``pytorch==2.9.1+cu128`` -> (``pytorch``, ``2.9.1``); None if no framework pin."""
        if not self.framework or "==" not in self.framework:
            return None
        name, version = self.framework.split("==", 1)
        return name.strip().lower(), _CU_TAG.sub("", version.strip())

    def cuda_from_tag(self) -> CudaVersion | None:
        """The CUDA named by a wheel's local tag: ``+cu128`` -> 12.8, ``+cu130`` -> 13.0."""
        if not self.framework:
            return None
        m = _CU_TAG.search(self.framework.strip())
        if not m:
            return None
        digits = m.group(1)
        return CudaVersion(f"{digits[:-1]}.{digits[-1]}")


@dataclass(frozen=True)
class Hardware:
    """The part of a host the rules need: GPU model, how many, NVSwitch or not."""

    gpu: GpuModel
    count: int = 1
    nvswitch: bool = False

    @classmethod
    def of(cls, host: Host) -> Hardware:
        return cls(gpu=host.gpu, count=host.gpu_count, nvswitch=host.nvswitch)


@dataclass(frozen=True)
class CheckContext:
    """Inputs beyond hardware and stack; ``now`` is passed in so the engine never reads the clock."""

    now: date | None = None
    pool: str | None = None
    production: bool = False
    workloads: tuple[Workload, ...] = ()
    cuda_compat: bool = False
