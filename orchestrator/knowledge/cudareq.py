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
    NO = "no"
    UNKNOWN = "unknown"


@dataclass(frozen=True)
class Verdict:
    runs: Runs
    release: CudaRelease | None
    floor: MinorCompat | None


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
    floor = minor_floor(k, cuda.major)
    if release is None and floor is None:
        return Verdict(Runs.UNKNOWN, None, None)
    if release is not None and release.satisfied_by(driver):
        return Verdict(Runs.NATIVE, release, floor)
    if floor is not None and floor.admits(driver):
        return Verdict(Runs.MINOR_COMPAT if release is not None else Runs.UNKNOWN, release, floor)
    if cuda_compat and is_datacenter(k, gpu):
        return Verdict(Runs.FORWARD_COMPAT, release, floor)
    return Verdict(Runs.NO, release, floor)


def needed(verdict: Verdict, cuda: CudaVersion) -> str:
    """Human text of what the CUDA needs: ``>= 570.26 (CUDA 12.8 GA)``."""
    if verdict.release is not None:
        return f"{verdict.release.requirement()} ({verdict.release.label})"
    if verdict.floor is not None:
        return f"{verdict.floor.floor_text()} (CUDA {cuda.major}.x floor)"
    return "unknown"
