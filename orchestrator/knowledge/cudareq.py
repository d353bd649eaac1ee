"""Can this driver run that CUDA? The one place that reads the toolkit/driver table and the floors."""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

from orchestrator.knowledge.facts import CudaRelease, MinorCompat
from orchestrator.knowledge.loader import Knowledge
from orchestrator.model.gpus import GpuModel
from orchestrator.model.versions import CudaVersion, DriverVersion


class Runs(StrEnum):
    NATIVE = "native"
    MINOR_COMPAT = "minor-compat"
    FORWARD_COMPAT = "forward-compat"
    FORWARD_UNSUPPORTED = "forward-compat-unsupported"
    NO = "no"
    UNKNOWN = "unknown"


@dataclass(frozen=True)
class Verdict:
    runs: Runs
    release: CudaRelease | None
    floor: MinorCompat | None
    why: str = ""
    source: str = ""
    unverified: bool = False


def release_for(k: Knowledge, cuda: CudaVersion) -> CudaRelease | None:
    """The release a version means: ``12.8.1`` that update, ``12.8`` (no patch) the GA release."""
    same = sorted((r for r in k.cuda.releases if r.version.key[:2] == cuda.key[:2]), key=lambda r: r.version)
    if not same:
        return None
    if cuda.text.count(".") < 2:
        return same[0]
    older = [r for r in same if r.version <= cuda]
    return older[-1] if older else same[0]


def minor_floor(k: Knowledge, major: int) -> MinorCompat | None:
    return next((m for m in k.cuda.minor_version_compatibility if m.cuda_major == major), None)


def is_datacenter(k: Knowledge, gpu: GpuModel) -> bool:
    fc = k.architectures.forward_compatibility
    return fc is not None and gpu.name in fc.datacenter_models


def driver_runs(
    k: Knowledge, driver: DriverVersion, cuda: CudaVersion, gpu: GpuModel, cuda_compat: bool
) -> Verdict:
    """Native, under minor version compatibility, through a cuda-compat package, or not at all."""
    release = release_for(k, cuda)
    if release is not None and not release.has_requirement:
        release = None  # known release, driver requirement not on file
    floor = minor_floor(k, cuda.major)
    if release is None and floor is None:
        return Verdict(Runs.UNKNOWN, None, None)
    if release is not None and release.satisfied_by(driver):
        return Verdict(Runs.NATIVE, release, floor)
    if floor is not None and floor.admits(driver):
        return Verdict(Runs.MINOR_COMPAT if release is not None else Runs.UNKNOWN, release, floor)
    if cuda_compat and is_datacenter(k, gpu):
        return forward_verdict(k, driver, cuda, release, floor)
    return Verdict(Runs.NO, release, floor)


def forward_verdict(
    k: Knowledge, driver: DriverVersion, cuda: CudaVersion, release: CudaRelease | None, floor: MinorCompat | None
) -> Verdict:
    """A cuda-compat package on a data-center GPU: the base floor, the branch-kind exclusion, the support table."""
    fc = k.architectures.forward_compatibility
    assert fc is not None
    base = fc.floor(cuda.major)
    if base is not None and not base.admits(driver):
        why = f"cuda-compat packages of CUDA {cuda.major} need a base driver {base.floor_text()}"
        return Verdict(Runs.FORWARD_UNSUPPORTED, release, floor, why, base.source, base.is_unverified("min_branch"))
    branch = k.branch(driver.major)
    excluded = fc.excluded
    if excluded is not None and branch is not None and branch.kind in excluded.kinds:
        why = f"R{driver.major} is a {branch.kind} branch, which is not a forward-compatibility target"
        return Verdict(Runs.FORWARD_UNSUPPORTED, release, floor, why, excluded.source, excluded.is_unverified("kinds"))
    row = fc.row(cuda)
    columns = fc.table_branches
    if row is None and columns is not None and driver.major not in columns.branches:
        why = (f"R{driver.major} is not a branch of NVIDIA's forward-compatibility table; branches not listed are "
               "end of life and not supported targets")
        return Verdict(Runs.FORWARD_UNSUPPORTED, release, floor, why, columns.source, columns.is_unverified("branches"))
    if row is None:
        why = f"NVIDIA's support table for cuda-compat-{cuda.major}-{cuda.minor} is not on file"
        return Verdict(Runs.FORWARD_COMPAT, release, floor, why, fc.source, True)
    if driver.major not in row.branches:
        listed = ", ".join(f"R{b}" for b in row.branches)
        why = (f"cuda-compat-{cuda.major}-{cuda.minor} is supported on {listed} only; branches not listed are "
               "not supported targets")
        return Verdict(Runs.FORWARD_UNSUPPORTED, release, floor, why, row.source, row.is_unverified("branches"))
    return Verdict(Runs.FORWARD_COMPAT, release, floor, f"R{driver.major} is listed for it", row.source)


def needed(verdict: Verdict, cuda: CudaVersion) -> str:
    """Human text of what the CUDA needs: ``>= 570.26 (CUDA 12.8 GA)``."""
    if verdict.release is not None:
        return f"{verdict.release.requirement()} ({verdict.release.label})"
    if verdict.floor is not None:
        return f"{verdict.floor.floor_text()} (CUDA {cuda.major}.x floor)"
    return "unknown"
