"""The compatibility rules: small functions in a table keyed by stable ids, each yielding violations.

A rule sees the facts, the hardware, one stack and the context, and never does IO. Add a rule by
decorating a function with ``@rule(ids...)``; ``RULES`` is what the engine runs and the docs list.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass

from orchestrator.knowledge.cudareq import Runs, driver_runs, is_datacenter, needed
from orchestrator.knowledge.facts import ModuleNeed
from orchestrator.knowledge.findings import CheckContext, Hardware, Severity, Violation
from orchestrator.knowledge.loader import UPDATE_COMMAND, Knowledge
from orchestrator.model.stack import KernelModuleFlavor, SoftwareStack
from orchestrator.model.versions import CudaVersion, DriverVersion

E, W = Severity.ERROR, Severity.WARNING
RuleFn = Callable[[Knowledge, Hardware, SoftwareStack, CheckContext], Iterator[Violation]]


@dataclass(frozen=True)
class Rule:
    ids: tuple[str, ...]
    fn: RuleFn
    summary: str


RULES: list[Rule] = []


def rule(*ids: str) -> Callable[[RuleFn], RuleFn]:
    def register(fn: RuleFn) -> RuleFn:
        RULES.append(Rule(ids, fn, (fn.__doc__ or "").strip().splitlines()[0]))
        return fn

    return register


def cuda_verdicts(
    k: Knowledge,
    hw: Hardware,
    driver: DriverVersion,
    cuda: CudaVersion,
    what: str,
    ctx: CheckContext,
    ids: tuple[str, str, str, str, str],
) -> Iterator[Violation]:
    """Shared by the toolkit and workload rules: the outcomes of 'can this driver run that CUDA'."""
    v = driver_runs(k, driver, cuda, hw.gpu, ctx.cuda_compat)
    too_old, minor, forward, unknown, unsupported = ids
    release_src = v.release.source if v.release else (v.floor.source if v.floor else "")
    package = f"cuda-compat-{cuda.major}-{cuda.minor}"
    if v.runs is Runs.UNKNOWN:
        yield Violation(
            rule=unknown,
            severity=W,
            source=release_src or "orchestrator/knowledge/data/cuda.yaml",
            message=f"{what} CUDA {cuda}: no driver requirement on file for this release",
            fix=f"add the release to a site facts file: {UPDATE_COMMAND}",
        )
    elif v.runs is Runs.MINOR_COMPAT:
        assert v.floor is not None
        limits = k.cuda.minor_version_limits
        yield Violation(
            rule=minor,
            severity=W,
            source=v.floor.source,
            message=f"{what} CUDA {cuda} needs driver {needed(v, cuda)} natively; {driver} runs it "
            f"only under minor version compatibility (CUDA {cuda.major}.x "
            f"{v.floor.floor_text()}): {limits.text if limits else 'limited features'}",
            fix=f"upgrade the driver to {v.release.requirement() if v.release else 'a newer one'}",
        )
    elif v.runs is Runs.FORWARD_COMPAT:
        yield Violation(
            rule=forward,
            severity=W,
            source=v.source or release_src,
            unverified=v.unverified,
            message=f"{what} CUDA {cuda} runs on driver {driver} only through the forward-compatibility "
            f"package {package} (data-center GPUs): {v.why}",
            fix=f"install {package} or upgrade the driver to {needed(v, cuda)}",
        )
    elif v.runs is Runs.FORWARD_UNSUPPORTED:
        yield Violation(
            rule=unsupported,
            severity=E,
            source=v.source,
            unverified=v.unverified,
            message=f"{what} CUDA {cuda} through {package} on driver {driver}: {v.why}",
            fix=f"upgrade the driver to {needed(v, cuda)} or move to a branch NVIDIA lists for {package}",
        )
    elif v.runs is Runs.NO:
        datacenter = is_datacenter(k, hw.gpu)
        hint = f" or install {package} (forward compatibility)" if datacenter else ""
        why = (
            f" ({package} is for data-center GPUs only; {hw.gpu.name} is not one)"
            if ctx.cuda_compat and not datacenter
            else ""
        )
        yield Violation(
            rule=too_old,
            severity=E,
            source=release_src,
            message=f"{what} CUDA {cuda} needs driver {needed(v, cuda)}"
            + (
                f", at least {v.floor.floor_text()} with minor version compatibility"
                if v.floor and v.release
                else ""
            )
            + f"; driver is {driver}{why}",
            fix=f"upgrade the driver to {needed(v, cuda)}{hint}",
        )


@rule(
    "driver-too-old-for-cuda",
    "cuda-minor-version-compat",
    "cuda-forward-compat",
    "unknown-cuda-release",
    "cuda-forward-compat-unsupported",
)
def driver_vs_toolkit(k: Knowledge, hw: Hardware, s: SoftwareStack, ctx: CheckContext) -> Iterator[Violation]:
    """The driver must run the installed CUDA toolkit: natively, under minor or forward compatibility."""
    if s.driver is None or s.cuda is None:
        return
    yield from cuda_verdicts(
        k,
        hw,
        s.driver,
        s.cuda,
        "toolkit",
        ctx,
        (
            "driver-too-old-for-cuda",
            "cuda-minor-version-compat",
            "cuda-forward-compat",
            "unknown-cuda-release",
            "cuda-forward-compat-unsupported",
        ),
    )


@rule("driver-drops-architecture", "driver-predates-architecture")
def driver_vs_architecture(
    k: Knowledge, hw: Hardware, s: SoftwareStack, ctx: CheckContext
) -> Iterator[Violation]:
    """A driver drives an architecture from its first branch to its last (Blackwell R570+, Kepler to R470)."""
    arch = k.architecture(hw.gpu.architecture)
    if s.driver is None or arch is None:
        return
    if arch.min_driver_branch is not None and s.driver.major < arch.min_driver_branch:
        yield Violation(
            rule="driver-predates-architecture",
            severity=E,
            source=arch.source_of("min_driver_branch"),
            unverified=arch.is_unverified("min_driver_branch"),
            message=f"driver {s.driver} (R{s.driver.major}) predates {hw.gpu} ({arch.name}); "
            f"R{arch.min_driver_branch} is the first branch for {arch.name}",
            fix=f"use an R{arch.min_driver_branch} or later driver",
        )
    if arch.last_driver_branch is not None and s.driver.major > arch.last_driver_branch:
        yield Violation(
            rule="driver-drops-architecture",
            severity=E,
            source=arch.source_of("last_driver_branch"),
            unverified=arch.is_unverified("last_driver_branch"),
            message=f"driver {s.driver} (R{s.driver.major}) does not support {hw.gpu} ({arch.name}); "
            f"R{arch.last_driver_branch} is the last branch for {arch.name}",
            fix=f"stay on an R{arch.last_driver_branch} driver",
        )


@rule("cuda-drops-architecture", "cuda-predates-architecture")
def toolkit_vs_architecture(
    k: Knowledge, hw: Hardware, s: SoftwareStack, ctx: CheckContext
) -> Iterator[Violation]:
    """The toolkit must still target the GPU (CUDA 13 drops Maxwell, Pascal, Volta) and already know it."""
    if s.cuda is not None:
        yield from arch_cuda(
            k, hw, s.cuda, "toolkit", "cuda-drops-architecture", "cuda-predates-architecture"
        )


def arch_cuda(
    k: Knowledge, hw: Hardware, cuda: CudaVersion, what: str, drops: str, predates: str
) -> Iterator[Violation]:
    arch = k.architecture(hw.gpu.architecture)
    if arch is None:
        return
    if arch.last_cuda_major is not None and cuda.major > arch.last_cuda_major:
        yield Violation(
            rule=drops,
            severity=E,
            source=arch.source_of("last_cuda_major"),
            unverified=arch.is_unverified("last_cuda_major"),
            message=f"{what} CUDA {cuda} cannot target {hw.gpu} ({arch.name}, cc "
            f"{hw.gpu.compute_capability}); CUDA {arch.last_cuda_major}.x is the last for it",
            fix=f"keep CUDA {arch.last_cuda_major}.x on these hosts",
        )
    cc = str(hw.gpu.compute_capability)
    first = arch.first_cuda.get(cc)
    if first is not None and cuda.major_minor < first:
        yield Violation(
            rule=predates,
            severity=E,
            source=arch.source_of("first_cuda", cc),
            unverified=arch.is_unverified("first_cuda"),
            message=f"{what} CUDA {cuda} predates {hw.gpu} (cc {hw.gpu.compute_capability}); "
            f"CUDA {first} is the first to support it",
            fix=f"use CUDA {first} or newer",
        )


@rule(
    "open-module-required", "open-module-unsupported", "open-module-driver-too-old", "proprietary-modules-removed"
)
def kernel_module(k: Knowledge, hw: Hardware, s: SoftwareStack, ctx: CheckContext) -> Iterator[Violation]:
    """Blackwell needs the open kernel modules; Maxwell, Pascal and Volta cannot use them; R620 has only them."""
    if s.kernel_module is None:
        return
    only = k.architectures.open_only_from_branch
    if (
        only is not None
        and s.driver is not None
        and s.kernel_module is KernelModuleFlavor.PROPRIETARY
        and s.driver.major >= only.branch
    ):
        yield Violation(
            rule="proprietary-modules-removed",
            severity=E,
            source=only.source,
            message=f"driver {s.driver}: NVIDIA removed the proprietary kernel modules from R{only.branch} on; "
            "the stack asks for the proprietary flavor",
            fix=f"install the open flavor (nvidia-open) or stay below R{only.branch}",
        )
    arch = k.architecture(hw.gpu.architecture)
    need = k.model_need(hw.gpu.name) or arch
    if (
        need is not None
        and need.kernel_module is ModuleNeed.OPEN_REQUIRED
        and s.kernel_module is KernelModuleFlavor.PROPRIETARY
    ):
        yield Violation(
            rule="open-module-required",
            severity=E,
            source=need.source_of("kernel_module"),
            unverified=need.is_unverified("kernel_module"),
            message=f"{hw.gpu} needs the open kernel modules; the stack has the proprietary flavor",
            fix="install nvidia-driver-<branch>-open",
        )
    if (
        need is not None
        and need.kernel_module is ModuleNeed.PROPRIETARY_ONLY
        and s.kernel_module is KernelModuleFlavor.OPEN
    ):
        yield Violation(
            rule="open-module-unsupported",
            severity=E,
            source=need.source_of("kernel_module"),
            unverified=need.is_unverified("kernel_module"),
            message=f"{hw.gpu} ({hw.gpu.architecture}) cannot use the open kernel modules "
            "(Turing and newer only)",
            fix="install the proprietary nvidia-driver-<branch>",
        )
    first = k.architectures.open_module_first_branch
    if (
        first
        and s.driver is not None
        and s.kernel_module is KernelModuleFlavor.OPEN
        and s.driver.major < first.branch
    ):
        yield Violation(
            rule="open-module-driver-too-old",
            severity=E,
            source=first.source,
            message=f"driver {s.driver} predates the open kernel modules (R{first.branch} and later)",
            fix=f"use an R{first.branch} or later driver, or the proprietary flavor",
        )


@rule("fabric-manager-mismatch", "fabric-manager-missing")
def fabric_manager(k: Knowledge, hw: Hardware, s: SoftwareStack, ctx: CheckContext) -> Iterator[Violation]:
    """On NVSwitch systems the fabric manager version must equal the driver version exactly."""
    fm = k.architectures.fabric_manager
    if not hw.nvswitch or s.driver is None or fm is None:
        return
    if s.fabric_manager is None:
        yield Violation(
            rule="fabric-manager-missing",
            severity=E,
            source=fm.source,
            message=f"NVSwitch system without fabric manager; driver is {s.driver}",
            fix=f"install nvidia-fabricmanager-{s.driver.major} {s.driver}",
        )
    elif s.fabric_manager != s.driver:
        yield Violation(
            rule="fabric-manager-mismatch",
            severity=E,
            source=fm.source,
            message=f"fabric manager {s.fabric_manager} != driver {s.driver} on an NVSwitch system",
            fix=f"install nvidia-fabricmanager-{s.driver.major} {s.driver}",
        )
