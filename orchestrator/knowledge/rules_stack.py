"""Rules on libraries, driver lifecycle, declared workloads and site golden stacks (table in rules.py)."""

from __future__ import annotations

from collections.abc import Iterator

from orchestrator.knowledge.facts import BranchKind
from orchestrator.knowledge.findings import CheckContext, Hardware, Violation, Workload
from orchestrator.knowledge.loader import Knowledge
from orchestrator.knowledge.rules import E, W, arch_cuda, cuda_verdicts, rule
from orchestrator.model.stack import COMPONENTS, SoftwareStack
from orchestrator.model.versions import CudaVersion

DATA = "orchestrator/knowledge/data"


@rule("cudnn-cuda-mismatch", "cudnn-drops-architecture")
def cudnn(k: Knowledge, hw: Hardware, s: SoftwareStack, ctx: CheckContext) -> Iterator[Violation]:
    """cuDNN must be built for the toolkit's CUDA major and still support the GPU."""
    if s.cudnn is None:
        return
    rel = next((c for c in k.libraries.cudnn if c.version.key[:2] == s.cudnn.key[:2]), None)
    if rel is None:
        return
    if s.cuda is not None and s.cuda.major not in rel.cuda_majors:
        majors = ", ".join(f"{m}.x" for m in rel.cuda_majors)
        yield Violation(
            rule="cudnn-cuda-mismatch",
            severity=E,
            source=rel.source,
            message=f"cuDNN {s.cudnn} is built for CUDA {majors} (support matrix of {rel.version}), "
            f"not for CUDA {s.cuda}",
            fix=f"install the cuDNN build for CUDA {s.cuda.major} (libcudnn9-cuda-{s.cuda.major})",
        )
    cc = rel.min_cc()
    if cc is not None and hw.gpu.compute_capability < cc:
        yield Violation(
            rule="cudnn-drops-architecture",
            severity=E,
            source=rel.source_of("min_compute_capability"),
            message=f"cuDNN {s.cudnn} supports compute capability {cc} and newer; {hw.gpu} is "
            f"{hw.gpu.compute_capability}",
            fix="keep an older cuDNN on these hosts",
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
    rel = next((n for n in k.libraries.nccl if n.version == s.nccl), None)
    if rel is not None and all(b.major != s.cuda.major for b in rel.cuda_builds):
        builds = ", ".join(str(b) for b in rel.cuda_builds)
        yield Violation(
            rule="nccl-cuda-mismatch",
            severity=E,
            source=rel.source,
            message=f"NCCL {s.nccl} has builds for CUDA {builds}, none for CUDA {s.cuda}",
            fix="pick an NCCL release with a build for this CUDA major",
        )


@rule("branch-end-of-life", "unknown-driver-branch", "new-feature-branch-in-production")
def lifecycle(k: Knowledge, hw: Hardware, s: SoftwareStack, ctx: CheckContext) -> Iterator[Violation]:
    """Warn about end-of-life branches, branches with no facts, and new-feature branches in production."""
    if s.driver is None:
        return
    b = k.branch(s.driver.major)
    if b is None:
        yield Violation(
            rule="unknown-driver-branch",
            severity=W,
            source=f"{DATA}/drivers.yaml",
            message=f"no facts on driver branch R{s.driver.major} ({s.driver})",
            fix="add the branch to a site facts file (--site)",
        )
        return
    past = b.end_of_life is not None and ctx.now is not None and ctx.now.strftime("%Y-%m") > b.end_of_life
    if past or (b.end_of_life is None and b.end_of_life_listed):
        when = f" since {b.end_of_life}" if b.end_of_life else ""
        yield Violation(
            rule="branch-end-of-life",
            severity=W,
            source=b.source_of("end_of_life"),
            unverified=b.is_unverified("end_of_life"),
            message=f"driver {s.driver}: branch R{b.branch} is end of life{when}",
            fix="move to a supported long-term-support or production branch",
        )
    if ctx.production and b.kind is BranchKind.NEW_FEATURE:
        yield Violation(
            rule="new-feature-branch-in-production",
            severity=W,
            source=b.source_of("kind"),
            unverified=b.is_unverified("kind"),
            message=f"driver {s.driver}: R{b.branch} is a new-feature branch in production pool "
            f"{ctx.pool or ''}".rstrip(),
            fix="use a long-term-support or production branch",
        )


def workload_cuda(k: Knowledge, w: Workload) -> CudaVersion | None:
    """The CUDA a workload was built with: declared, from a ``+cuXYZ`` tag, or the only build on file."""
    if w.cuda is not None:
        return w.cuda
    tagged = w.cuda_from_tag()
    if tagged is not None:
        return tagged
    parts = w.framework_parts()
    if parts is None:
        return None
    builds = [f for f in k.libraries.frameworks if f.name.lower() == parts[0] and f.version == parts[1]]
    if len(builds) == 1 and len(builds[0].cuda) == 1:
        return builds[0].cuda[0]
    return None


@rule(
    "workload-needs-newer-driver",
    "workload-minor-version-compat",
    "workload-forward-compat",
    "workload-unknown-cuda",
    "workload-drops-architecture",
)
def workloads(k: Knowledge, hw: Hardware, s: SoftwareStack, ctx: CheckContext) -> Iterator[Violation]:
    """Declared workloads (framework builds, images) must run on this driver and GPU."""
    for w in ctx.workloads:
        cuda = workload_cuda(k, w)
        if cuda is None:
            yield Violation(
                rule="workload-unknown-cuda",
                severity=W,
                source=f"{DATA}/libraries.yaml",
                subject=w.name,
                message=f"workload {w.name}: cannot tell which CUDA it was built with",
                fix="declare `cuda:` for the workload or pin a +cuXYZ wheel",
            )
            continue
        if s.driver is not None:
            for v in cuda_verdicts(
                k,
                hw,
                s.driver,
                cuda,
                f"workload {w.name}:",
                ctx,
                (
                    "workload-needs-newer-driver",
                    "workload-minor-version-compat",
                    "workload-forward-compat",
                    "workload-unknown-cuda",
                ),
            ):
                yield v.about(w.name)
        for v in arch_cuda(
            k, hw, cuda, f"workload {w.name}:", "workload-drops-architecture", "workload-drops-architecture"
        ):
            yield v.about(w.name)


@rule("not-golden-stack")
def golden(k: Knowledge, hw: Hardware, s: SoftwareStack, ctx: CheckContext) -> Iterator[Violation]:
    """With site golden stacks on file, a pool's stack should match one of them."""
    candidates = [g for g in k.golden_stacks if not g.pools or (ctx.pool is not None and ctx.pool in g.pools)]
    if not candidates:
        return
    for g in candidates:
        pinned = [c for c in COMPONENTS if g.stack.component(c) is not None]
        if all(g.stack.component(c) == s.component(c) for c in pinned):
            return
    names = ", ".join(g.name for g in candidates)
    yield Violation(
        rule="not-golden-stack",
        severity=W,
        source=k.override_file or "site facts",
        message=f"stack ({s.describe()}) matches none of the site's golden stacks: {names}",
        fix="use a golden stack or add this one to the site facts after validating it",
    )
