"""Rules on cuDNN and NCCL: CUDA major and compute-capability range, judged for releases between known ones.

A release on file is judged by its own facts. A release between two on file (cuDNN 9.12 between 9.10.2 and
9.17.0) is judged from both neighbours where they agree; where they disagree nothing is claimed.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from typing import TypeVar

from orchestrator.knowledge.facts import CudnnRelease, NcclRelease
from orchestrator.knowledge.findings import CheckContext, Hardware, Violation
from orchestrator.knowledge.loader import Knowledge
from orchestrator.knowledge.rules import E, rule
from orchestrator.model.stack import SoftwareStack
from orchestrator.model.versions import CudaVersion, CudnnVersion, NcclVersion

DATA = "orchestrator/knowledge/data"
R = TypeVar("R", CudnnRelease, NcclRelease)


def facts_for(
    releases: Sequence[R], version: CudnnVersion | NcclVersion, same: Callable[[R], bool]
) -> tuple[list[R], str]:
    """The release itself (``same``), else its two neighbours of the same major; the text says which."""
    own = [r for r in releases if same(r)]
    if own:
        return own[:1], ""
    below = [r for r in releases if r.version < version and r.version.major == version.major]
    above = [r for r in releases if r.version > version and r.version.major == version.major]
    if not below or not above:
        return [], ""
    lo, hi = max(below, key=lambda r: r.version), min(above, key=lambda r: r.version)
    return [lo, hi], f" (judged from {lo.version} and {hi.version}, the releases on file either side)"


@rule("cudnn-cuda-mismatch", "cudnn-drops-architecture", "cudnn-predates-architecture")
def cudnn(k: Knowledge, hw: Hardware, s: SoftwareStack, ctx: CheckContext) -> Iterator[Violation]:
    """cuDNN must be built for the toolkit's CUDA major and support the GPU (lowest to highest cc)."""
    if s.cudnn is None:
        return
    wanted = s.cudnn
    rels, judged = facts_for(k.libraries.cudnn, wanted, lambda r: r.version.key[:2] == wanted.key[:2])
    if not rels:
        return
    src = rels[0].source
    if s.cuda is not None and all(s.cuda.major not in r.cuda_majors for r in rels):
        majors = ", ".join(f"{m}.x" for m in sorted({m for r in rels for m in r.cuda_majors}))
        yield Violation(
            rule="cudnn-cuda-mismatch",
            severity=E,
            source=src,
            message=f"cuDNN {s.cudnn} is built for CUDA {majors}, not for CUDA {s.cuda}{judged}",
            fix=f"install the cuDNN build for CUDA {s.cuda.major} (libcudnn9-cuda-{s.cuda.major})",
        )
    cc = hw.gpu.compute_capability
    ranges = [r.cc_range(s.cuda) for r in rels]
    if all(lo is not None and cc < lo for lo, _ in ranges):
        lowest = max(lo for lo, _ in ranges if lo is not None)
        yield Violation(
            rule="cudnn-drops-architecture",
            severity=E,
            source=rels[0].source_of("min_compute_capability"),
            message=f"cuDNN {s.cudnn} supports compute capability {lowest} and newer; {hw.gpu} is {cc}{judged}",
            fix="keep an older cuDNN on these hosts",
        )
    if all(hi is not None and cc > hi for _, hi in ranges):
        highest = min(hi for _, hi in ranges if hi is not None)
        build = f" built for CUDA {s.cuda}" if s.cuda is not None and any(r.builds for r in rels) else ""
        yield Violation(
            rule="cudnn-predates-architecture",
            severity=E,
            source=rels[0].source_of("max_compute_capability"),
            unverified=rels[0].is_unverified("max_compute_capability"),
            message=f"cuDNN {s.cudnn}{build} supports compute capability up to {highest}; {hw.gpu} is {cc}"
            f"{judged}",
            fix="install a cuDNN release (and CUDA build) whose support matrix lists this GPU",
        )


@rule("nccl-cuda-mismatch")
def nccl(k: Knowledge, hw: Hardware, s: SoftwareStack, ctx: CheckContext) -> Iterator[Violation]:
    """NCCL must be built for the toolkit's CUDA major (the package version says which: +cuda12.4)."""
    if s.nccl is None or s.cuda is None:
        return
    built = getattr(s.nccl, "cuda", None)
    if isinstance(built, CudaVersion):
        if built.major != s.cuda.major:
            yield Violation(
                rule="nccl-cuda-mismatch",
                severity=E,
                source=f"{DATA}/libraries.yaml",
                message=f"NCCL {s.nccl} is built for CUDA {built}, the toolkit is CUDA {s.cuda}",
                fix=f"install the libnccl2 build +cuda{s.cuda.major}.x",
            )
        return
    rels, judged = facts_for(k.libraries.nccl, s.nccl, lambda r: r.version == s.nccl)
    if rels and all(s.cuda.major not in r.majors() for r in rels):
        said = {d for r in rels for d in r.describe()}
        builds = ", ".join(sorted(said, key=lambda d: CudaVersion(d.replace("x", "0"))))
        yield Violation(
            rule="nccl-cuda-mismatch",
            severity=E,
            source=rels[0].source,
            message=f"NCCL {s.nccl} is built for CUDA {builds}, not for CUDA {s.cuda}{judged}",
            fix="pick an NCCL release with a build for this CUDA major",
        )
