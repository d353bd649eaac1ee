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
from orchestrator.model.stack import OsRelease, SoftwareStack
from orchestrator.model.versions import CudaVersion, CudnnVersion, DriverVersion, NcclVersion

_MONTH = re.compile(r"^\d{4}-(0[1-9]|1[0-2])$")
_DAY = re.compile(r"^\d{4}-(0[1-9]|1[0-2])-(0[1-9]|[12]\d|3[01])$")


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Sourced(_Strict):
    """Provenance shared by every fact: where it comes from and what could not be confirmed."""

    source: str = Field(min_length=1)
    sources: dict[str, str] = {}
    unverified: tuple[str, ...] = ()
    note: str = ""

    def source_of(self, field: str, key: str | None = None) -> str:
        """The page that states ``field`` (or one ``key`` of a mapping field, ``sources: {"first_cuda:10.3": ...}``):
        its own entry in ``sources``, else the field's, else the entry's ``source``."""
        if key is not None and f"{field}:{key}" in self.sources:
            return self.sources[f"{field}:{key}"]
        return self.sources.get(field, self.source)

    def is_unverified(self, field: str) -> bool:
        return field in self.unverified or "*" in self.unverified

    @model_validator(mode="after")
    def _known_fields(self) -> Self:
        names = set(type(self).model_fields)
        bad = [f for f in (*self.sources, *self.unverified) if f != "*" and f.split(":", 1)[0] not in names]
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
    """One toolkit release and the driver it needs natively (an exact minimum, or only a branch).

    A release imported from a manifest that names no driver has neither: it is known (so a target
    naming it is not "newer than the knowledge base") but its driver requirement is not.
    """

    version: CudaVersion
    label: str
    min_driver: DriverVersion | None = None
    driver_branch: int | None = None
    released: str | None = None

    @model_validator(mode="after")
    def _one_requirement(self) -> Self:
        if self.min_driver is not None and self.driver_branch is not None:
            raise ValueError(f"{self.version}: give one of min_driver, driver_branch, not both")
        if self.released is not None and not _DAY.match(self.released):
            raise ValueError(f"{self.version}: released {self.released!r} is not YYYY-MM-DD")
        return self

    @property
    def has_requirement(self) -> bool:
        return self.min_driver is not None or self.driver_branch is not None

    def satisfied_by(self, driver: DriverVersion) -> bool:
        if self.min_driver is not None:
            return driver >= self.min_driver
        return self.driver_branch is not None and driver.major >= self.driver_branch

    def requirement(self) -> str:
        if self.min_driver is not None:
            return f">= {self.min_driver}"
        return f"R{self.driver_branch} or later" if self.driver_branch is not None else "unknown"


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
    """What an architecture needs: first CUDA per compute capability, first and last driver branch,
    last CUDA major and which kernel-module flavor."""

    name: str
    first_cuda: dict[str, CudaVersion] = {}
    last_cuda_major: int | None = None
    min_driver_branch: int | None = None
    last_driver_branch: int | None = None
    kernel_module: ModuleNeed = ModuleNeed.EITHER


class ModelNeed(Sourced):
    """A GPU model whose kernel-module need differs from its architecture's (GH200)."""

    name: str
    kernel_module: ModuleNeed


class CompatSupport(Sourced):
    """One row of NVIDIA's forward-compatibility table: the driver branches a cuda-compat package runs on.

    Branches not listed for a package NVIDIA lists are not supported targets.
    """

    cuda: CudaVersion
    branches: tuple[int, ...]


class CompatBaseFloor(Sourced):
    """The minimum base driver installation under cuda-compat packages of one CUDA major."""

    cuda_major: int
    min_branch: int
    min_driver: DriverVersion | None = None

    def admits(self, driver: DriverVersion) -> bool:
        return driver >= self.min_driver if self.min_driver is not None else driver.major >= self.min_branch

    def floor_text(self) -> str:
        return f">= {self.min_driver}" if self.min_driver else f">= R{self.min_branch}"


class CompatExclusion(Sourced):
    """Driver branch kinds that are never forward-compatibility targets (new-feature branches)."""

    kinds: tuple[BranchKind, ...]


class CompatBranches(Sourced):
    """The driver branches NVIDIA's forward-compatibility table has a column for; others are not targets."""

    branches: tuple[int, ...]


class ForwardCompat(Sourced):
    """Forward compatibility as NVIDIA publishes it: data-center GPUs, a support table, exclusions, floors."""

    datacenter_models: tuple[str, ...]
    support: tuple[CompatSupport, ...] = ()
    table_branches: CompatBranches | None = None
    excluded: CompatExclusion | None = None
    base_floors: tuple[CompatBaseFloor, ...] = ()

    def row(self, cuda: CudaVersion) -> CompatSupport | None:
        return next((r for r in self.support if r.cuda.key[:2] == cuda.key[:2]), None)

    def floor(self, major: int) -> CompatBaseFloor | None:
        return next((f for f in self.base_floors if f.cuda_major == major), None)


class BranchFact(Sourced):
    branch: int


class RuleFact(Sourced):
    rule: str


def _cc(text: str | None) -> ComputeCapability | None:
    return ComputeCapability.parse(text) if text else None


class CudnnBuild(_Strict):
    """One row of a cuDNN support matrix: the CUDA minors of a build and its compute-capability range."""

    cuda: tuple[CudaVersion, ...]
    min_compute_capability: str
    max_compute_capability: str

    def covers(self, cuda: CudaVersion) -> bool:
        return any(c.key[:2] == cuda.key[:2] for c in self.cuda)


class CudnnRelease(Sourced):
    """A cuDNN release: the CUDA majors it is built for and the compute capabilities it supports."""

    version: CudnnVersion
    cuda_majors: tuple[int, ...]
    min_compute_capability: str | None = None
    max_compute_capability: str | None = None
    builds: tuple[CudnnBuild, ...] = ()

    def cc_range(self, cuda: CudaVersion | None) -> tuple[ComputeCapability | None, ComputeCapability | None]:
        """Lowest and highest compute capability; the build for ``cuda`` when the matrix has one."""
        build = next((b for b in self.builds if cuda is not None and b.covers(cuda)), None)
        if build is not None:
            return _cc(build.min_compute_capability), _cc(build.max_compute_capability)
        return _cc(self.min_compute_capability), _cc(self.max_compute_capability)

    def min_cc(self) -> ComputeCapability | None:
        return _cc(self.min_compute_capability)


class NcclRelease(Sourced):
    """An NCCL release: its CUDA builds (``+cuda12.9``) and/or the CUDA majors its notes say it supports
    ("This NCCL release supports CUDA 12.x and CUDA 13.x")."""

    version: NcclVersion
    cuda_builds: tuple[CudaVersion, ...] = ()
    cuda_majors: tuple[int, ...] = ()

    def majors(self) -> set[int]:
        return {b.major for b in self.cuda_builds} | set(self.cuda_majors)

    @model_validator(mode="after")
    def _says_cuda(self) -> Self:
        if not self.cuda_builds and not self.cuda_majors:
            raise ValueError(f"NCCL {self.version}: give cuda_builds or cuda_majors")
        return self

    def describe(self) -> list[str]:
        return [str(b) for b in self.cuda_builds] + [f"{m}.x" for m in self.cuda_majors]


class FrameworkBuild(Sourced):
    """A framework release (``2.9.1``) or release series (``2.9``: every 2.9.x) and its CUDA builds."""

    name: str
    version: str
    cuda: tuple[CudaVersion, ...]

    def covers(self, name: str, version: str) -> bool:
        if self.name.lower() != name.lower():
            return False
        return version == self.version or version.startswith(self.version + ".")


def _version_tuple(text: str) -> tuple[int, ...]:
    return tuple(int(p) for p in re.findall(r"\d+", text))


class OsEntry(_Strict):
    """A distribution release as ``/etc/os-release`` names it (``ID``, ``VERSION_ID`` or its major)."""

    id: str
    version: str
    up_to: str | None = Field(default=None, description="highest VERSION_ID covered: 8.3 for 'RHEL 8.y (y <= 3)'")
    from_version: str | None = Field(default=None, description="lowest VERSION_ID covered: 15.6 for 'SLES 15 SP6+'")
    name: str = ""
    kernel: str | None = None
    glibc: str | None = None

    def matches(self, os: OsRelease) -> bool:
        if os.id.lower() != self.id.lower():
            return False
        host = os.version_id
        if not (host == self.version or host.startswith(self.version + ".")):
            return False
        if self.from_version is not None and _version_tuple(host) < _version_tuple(self.from_version):
            return False
        return self.up_to is None or _version_tuple(host) <= _version_tuple(self.up_to)

    def describe(self) -> str:
        extra = ", ".join(x for x in (f"kernel {self.kernel}" if self.kernel else "",
                                      f"glibc {self.glibc}" if self.glibc else "") if x)
        return (self.name or f"{self.id} {self.version}") + (f" ({extra})" if extra else "")


class OsTable(Sourced):
    """A distribution table; ``unread_ids`` are distributions whose rows could not be read (no verdict)."""

    arch: str = "x86_64"
    unread_ids: tuple[str, ...] = ()
    distributions: tuple[OsEntry, ...]

    def supports(self, os: OsRelease) -> OsEntry | None:
        return next((d for d in self.distributions if d.matches(os)), None)


class CudaOsSupport(OsTable):
    """The distributions a CUDA release supports (CUDA installation guide, system requirements)."""

    cuda: CudaVersion


class BranchOsSupport(OsTable):
    """The distributions NVIDIA packages a driver branch for (driver installation guide)."""

    branch: int


class GoldenStack(_Strict):
    """A stack the site has validated; ``pools`` empty means every pool."""

    name: str
    pools: tuple[str, ...] = ()
    stack: SoftwareStack
    source: str = "site"


class CudaReleaseFacts(_Strict):
    minor_version_compatibility: tuple[MinorCompat, ...] = ()
    minor_version_limits: LimitsText | None = None
    releases: tuple[CudaRelease, ...] = ()


class DriverBranchFacts(_Strict):
    branches: tuple[DriverBranch, ...] = ()


class ArchitectureFacts(_Strict):
    architectures: tuple[Architecture, ...] = ()
    models: tuple[ModelNeed, ...] = ()
    forward_compatibility: ForwardCompat | None = None
    open_module_first_branch: BranchFact | None = None
    open_only_from_branch: BranchFact | None = None
    fabric_manager: RuleFact | None = None


class LibraryFacts(_Strict):
    cudnn: tuple[CudnnRelease, ...] = ()
    nccl: tuple[NcclRelease, ...] = ()
    frameworks: tuple[FrameworkBuild, ...] = ()


class OsFacts(_Strict):
    cuda: tuple[CudaOsSupport, ...] = ()
    drivers: tuple[BranchOsSupport, ...] = ()


class SiteFacts(_Strict):
    """A site override file: any section of the shipped data, plus golden stacks.

    ``date`` (YYYY-MM-DD) says how current the file's facts are; ``upgrade knowledge import`` sets it.
    """

    version: int = 1
    date: str | None = None
    cuda: CudaReleaseFacts = CudaReleaseFacts()
    drivers: DriverBranchFacts = DriverBranchFacts()
    architectures: ArchitectureFacts = ArchitectureFacts()
    libraries: LibraryFacts = LibraryFacts()
    os: OsFacts = OsFacts()
    golden_stacks: tuple[GoldenStack, ...] = ()

    @model_validator(mode="after")
    def _date(self) -> Self:
        if self.date is not None and not _DAY.match(self.date):
            raise ValueError(f"date {self.date!r} is not YYYY-MM-DD")
        return self
