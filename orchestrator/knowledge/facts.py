"""Typed, strict models of the compatibility facts; every fact names where it comes from.

Each entry carries ``source`` (default for all its fields), optional per-field ``sources``, ``unverified``
(the fields NVIDIA's own pages did not confirm) and a ``note``. Unknown keys are errors, so a stale or
misspelt data file fails to load instead of silently dropping a fact.
"""

from __future__ import annotations

import re
from enum import StrEnum
from typing import Self

from pydantic import BaseModel, ConfigDict, Field, model_validator

from orchestrator.model.gpus import ComputeCapability
from orchestrator.model.stack import SoftwareStack
from orchestrator.model.versions import CudaVersion, CudnnVersion, DriverVersion, NcclVersion

_MONTH = re.compile(r"^\d{4}-(0[1-9]|1[0-2])$")


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Sourced(_Strict):
    """Provenance shared by every fact: where it comes from and what could not be confirmed."""

    source: str = Field(min_length=1)
    sources: dict[str, str] = {}
    unverified: tuple[str, ...] = ()
    note: str = ""

    def source_of(self, field: str) -> str:
        """The page that states ``field`` (its own entry in ``sources`` or the entry's ``source``)."""
        return self.sources.get(field, self.source)

    def is_unverified(self, field: str) -> bool:
        return field in self.unverified or "*" in self.unverified

    @model_validator(mode="after")
    def _known_fields(self) -> Self:
        names = set(type(self).model_fields)
        bad = [f for f in (*self.sources, *self.unverified) if f != "*" and f not in names]
        if bad:
            raise ValueError(f"sources/unverified name unknown fields: {', '.join(sorted(bad))}")
        return self


class MinorCompat(Sourced):
    """The driver floor under which a CUDA major's applications run with minor version compatibility."""

    cuda_major: int
    min_branch: int
    min_driver: DriverVersion | None = None
    below_branch: int | None = None

    def admits(self, driver: DriverVersion) -> bool:
        if self.min_driver is not None:
            return driver >= self.min_driver
        return driver.major >= self.min_branch

    def floor_text(self) -> str:
        return f">= {self.min_driver}" if self.min_driver else f">= R{self.min_branch}"


class LimitsText(Sourced):
    text: str


class CudaRelease(Sourced):
    """One toolkit release and the driver it needs natively (an exact minimum, or only a branch)."""

    version: CudaVersion
    label: str
    min_driver: DriverVersion | None = None
    driver_branch: int | None = None

    @model_validator(mode="after")
    def _one_requirement(self) -> Self:
        if (self.min_driver is None) == (self.driver_branch is None):
            raise ValueError(f"{self.version}: give exactly one of min_driver, driver_branch")
        return self

    def satisfied_by(self, driver: DriverVersion) -> bool:
        if self.min_driver is not None:
            return driver >= self.min_driver
        assert self.driver_branch is not None
        return driver.major >= self.driver_branch

    def requirement(self) -> str:
        return f">= {self.min_driver}" if self.min_driver else f"R{self.driver_branch} or later"


class BranchKind(StrEnum):
    LTS = "long-term-support"
    PRODUCTION = "production"
    NEW_FEATURE = "new-feature"
    EVALUATION = "evaluation"


class DriverBranch(Sourced):
    """A driver branch (R580): its kind, end of life and CUDA major."""

    branch: int = Field(ge=100, le=999)
    kind: BranchKind | None = None
    released: str | None = None
    end_of_life: str | None = None
    end_of_life_listed: bool = False
    cuda_major: int | None = None

    @model_validator(mode="after")
    def _months(self) -> Self:
        for name in ("released", "end_of_life"):
            value = getattr(self, name)
            if value is not None and not _MONTH.match(value):
                raise ValueError(f"R{self.branch}: {name} {value!r} is not YYYY-MM")
        return self


class ModuleNeed(StrEnum):
    PROPRIETARY_ONLY = "proprietary-only"
    EITHER = "either"
    OPEN_REQUIRED = "open-required"


class Architecture(Sourced):
    """What an architecture needs: first CUDA per compute capability, last CUDA major and driver branch."""

    name: str
    first_cuda: dict[str, CudaVersion] = {}
    last_cuda_major: int | None = None
    last_driver_branch: int | None = None
    kernel_module: ModuleNeed = ModuleNeed.EITHER


class ModelNeed(Sourced):
    """A GPU model whose kernel-module need differs from its architecture's (GH200)."""

    name: str
    kernel_module: ModuleNeed


class ForwardCompat(Sourced):
    datacenter_models: tuple[str, ...]


class BranchFact(Sourced):
    branch: int


class RuleFact(Sourced):
    rule: str


class CudnnRelease(Sourced):
    version: CudnnVersion
    cuda_majors: tuple[int, ...]
    min_compute_capability: str | None = None

    def min_cc(self) -> ComputeCapability | None:
        return ComputeCapability.parse(self.min_compute_capability) if self.min_compute_capability else None


class NcclRelease(Sourced):
    version: NcclVersion
    cuda_builds: tuple[CudaVersion, ...]


class FrameworkBuild(Sourced):
    name: str
    version: str
    cuda: tuple[CudaVersion, ...]


class GoldenStack(_Strict):
    """A stack the site has validated; ``pools`` empty means every pool."""

    name: str
    pools: tuple[str, ...] = ()
    stack: SoftwareStack
    source: str = "site"


class CudaFacts(_Strict):
    minor_version_compatibility: tuple[MinorCompat, ...] = ()
    minor_version_limits: LimitsText | None = None
    releases: tuple[CudaRelease, ...] = ()


class DriverFacts(_Strict):
    branches: tuple[DriverBranch, ...] = ()


class ArchitectureFacts(_Strict):
    architectures: tuple[Architecture, ...] = ()
    models: tuple[ModelNeed, ...] = ()
    forward_compatibility: ForwardCompat | None = None
    open_module_first_branch: BranchFact | None = None
    fabric_manager: RuleFact | None = None


class LibraryFacts(_Strict):
    cudnn: tuple[CudnnRelease, ...] = ()
    nccl: tuple[NcclRelease, ...] = ()
    frameworks: tuple[FrameworkBuild, ...] = ()


class SiteFacts(_Strict):
    """A site override file: any section of the shipped data, plus golden stacks."""

    version: int = 1
    cuda: CudaFacts = CudaFacts()
    drivers: DriverFacts = DriverFacts()
    architectures: ArchitectureFacts = ArchitectureFacts()
    libraries: LibraryFacts = LibraryFacts()
    golden_stacks: tuple[GoldenStack, ...] = ()
