"""Rules on driver lifecycle, declared workloads and site golden stacks (table in rules.py)."""

from __future__ import annotations

from collections.abc import Iterator

from orchestrator.knowledge.facts import BranchKind
from orchestrator.knowledge.findings import CheckContext, Hardware, Violation, Workload
from orchestrator.knowledge.loader import UPDATE_COMMAND, Knowledge
from orchestrator.knowledge.rules import E, W, arch_cuda, cuda_verdicts, rule
from orchestrator.model.stack import COMPONENTS, SoftwareStack
from orchestrator.model.versions import CudaVersion

DATA = "orchestrator/knowledge/data"


@rule("branch-end-of-life", "unknown-driver-branch", "new-feature-branch-in-production")
def lifecycle(k: Knowledge, hw: Hardware, s: SoftwareStack, ctx: CheckContext) -> Iterator[Violation]:
    """Warn about end-of-life branches, branches with no facts, and new-feature branches in production."""
    if s.driver is None:
        return
    b = k.branch(s.driver.major)
    newest = k.newest_branch()
    if b is None and newest is not None and s.driver.major > newest.branch:
        return  # newer than every branch on file: the newer-than-knowledge rule says so
    if b is None:
        yield Violation(
            rule="unknown-driver-branch",
            severity=W,
            source=f"{DATA}/drivers.yaml",
            message=f"no facts on driver branch R{s.driver.major} ({s.driver})",
            fix=f"add the branch to a site facts file (--site): {UPDATE_COMMAND}",
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
    name = parts[0].split("[", 1)[0]
    builds = {c for f in k.libraries.frameworks if f.covers(name, parts[1]) for c in f.cuda}
    return builds.pop() if len(builds) == 1 else None


def _unplaced(k: Knowledge, w: Workload, ctx: CheckContext) -> Violation:
    """Why a workload cannot be placed; an error in a production pool, where it would run unchecked."""
    parts = w.framework_parts()
    name = parts[0].split("[", 1)[0] if parts else ""
    known = sorted(
        {str(c) for f in k.libraries.frameworks if parts and f.covers(name, parts[1]) for c in f.cuda},
        key=lambda t: CudaVersion(t),
    )
    if known:
        why = f"{w.framework} has builds for CUDA {', '.join(known)} and names none of them"
    elif w.framework:
        why = f"{w.framework} is not on file"
    else:
        why = f"image {w.image} declares no CUDA"
    return Violation(
        rule="workload-unknown-cuda",
        severity=E if ctx.production else W,
        source=f"{DATA}/libraries.yaml",
        subject=w.name,
        message=f"workload {w.name}: cannot tell which CUDA it was built with ({why})"
        + (f" in production pool {ctx.pool}" if ctx.production and ctx.pool else ""),
        fix="declare `cuda:` for the workload, pin a +cuXYZ build, or add the build to site knowledge "
        "(libraries.frameworks in the --site file)",
    )


@rule(
    "workload-needs-newer-driver",
    "workload-minor-version-compat",
    "workload-forward-compat",
    "workload-unknown-cuda",
    "workload-drops-architecture",
    "workload-forward-compat-unsupported",
)
def workloads(k: Knowledge, hw: Hardware, s: SoftwareStack, ctx: CheckContext) -> Iterator[Violation]:
    """Declared workloads (framework builds, images) must run on this driver and GPU."""
    for w in ctx.workloads:
        cuda = workload_cuda(k, w)
        if cuda is None:
            yield _unplaced(k, w, ctx)
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
                    "workload-forward-compat-unsupported",
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
