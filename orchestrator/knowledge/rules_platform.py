"""Rules on the host's operating system and on targets newer than the knowledge base (table in rules.py)."""

from __future__ import annotations

from collections.abc import Iterator

from orchestrator.knowledge.facts import OsTable
from orchestrator.knowledge.findings import CheckContext, Hardware, Violation
from orchestrator.knowledge.loader import UPDATE_COMMAND, Knowledge
from orchestrator.knowledge.rules import E, W, rule
from orchestrator.model.stack import OsRelease, SoftwareStack


def _os_finding(rule_id: str, table: OsTable, os: OsRelease, what: str, ctx: CheckContext) -> Violation | None:
    if table.supports(os) is not None or os.id.lower() in table.unread_ids:
        return None
    names = ", ".join(d.name or f"{d.id} {d.version}" for d in table.distributions)
    return Violation(
        rule=rule_id,
        severity=E if ctx.production else W,
        source=table.source,
        message=f"{os.pretty_name or os} is not among the distributions {what} supports ({table.arch}: {names})",
        fix=f"move the host to a supported distribution before installing {what}, or pick a target that "
        "supports this one",
    )


@rule("os-unsupported-by-cuda", "os-unsupported-by-driver")
def operating_system(k: Knowledge, hw: Hardware, s: SoftwareStack, ctx: CheckContext) -> Iterator[Violation]:
    """The host's distribution must be one the CUDA release and the driver branch support (error in production)."""
    if s.os is None:
        return
    if s.cuda is not None:
        cuda_table = k.cuda_os(s.cuda)
        if cuda_table is not None:
            found = _os_finding("os-unsupported-by-cuda", cuda_table, s.os, f"CUDA {cuda_table.cuda}", ctx)
            if found is not None:
                yield found
    if s.driver is not None:
        branch_table = k.branch_os(s.driver.major)
        if branch_table is not None:
            found = _os_finding("os-unsupported-by-driver", branch_table, s.os, f"driver R{s.driver.major}", ctx)
            if found is not None:
                yield found


@rule("newer-than-knowledge")
def newer_than_knowledge(k: Knowledge, hw: Hardware, s: SoftwareStack, ctx: CheckContext) -> Iterator[Violation]:
    """A stack naming a driver branch, CUDA, cuDNN or NCCL newer than every one on file is not judged."""
    newer: list[str] = []
    branch, cuda = k.newest_branch(), k.newest_cuda()
    if s.driver is not None and branch is not None and s.driver.major > branch.branch:
        newer.append(f"driver {s.driver} (knows up to R{branch.branch})")
    if s.cuda is not None and cuda is not None and s.cuda.key[:2] > cuda.version.key[:2]:
        newer.append(f"CUDA {s.cuda} (knows up to {cuda.version.major}.{cuda.version.minor})")
    cudnn = max((r.version for r in k.libraries.cudnn), default=None)
    if s.cudnn is not None and cudnn is not None and s.cudnn.key[:2] > cudnn.key[:2]:
        newer.append(f"cuDNN {s.cudnn} (knows up to {cudnn})")
    nccl = max((r.version for r in k.libraries.nccl), default=None)
    if s.nccl is not None and nccl is not None and s.nccl > nccl:
        newer.append(f"NCCL {s.nccl} (knows up to {nccl})")
    if newer:
        yield Violation(
            rule="newer-than-knowledge",
            severity=W,
            source=k.override_file or "orchestrator/knowledge/data",
            message=f"newer than the knowledge base {k.version} (facts as of {k.date}): " + "; ".join(newer),
            fix=f"update the knowledge base without a release: {UPDATE_COMMAND}",
        )
