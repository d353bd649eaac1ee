"""A host's step graph and the exact playbook, package and build of every step: what apply will run.

Upgrade: precheck, drain (cordon and drain in one playbook), the ordered component changes, reboot, verify,
gates, uncordon. Rollback: drain (skipped for a host already drained), the changes back to the starting
stack in the planner's reverse order, reboot, verify, gates, uncordon. The graph is a networkx DAG; the plan
stores it as steps in a stable topological order, each naming the steps it ``needs``.
"""

from __future__ import annotations

from dataclasses import dataclass

import networkx as nx

from orchestrator.model.grammar import is_build
from orchestrator.model.policy import Estimates, Gate, WorkloadGate
from orchestrator.model.stack import Host, PackageSource, SoftwareStack
from orchestrator.model.versions import KernelVersion
from orchestrator.planner.model import Step, StepKind, VarValue
from orchestrator.planner.packages import (
    PRECOMPILED,
    Naming,
    companions,
    cudnn_cuda_major,
    driver_extras,
    kernel_build,
    kernel_companions,
    matches,
    newest,
    package_name,
    pick_build,
    precompiled_module,
    upstream,
)

# Components whose change replaces the loaded kernel module or the kernel, so the host must reboot.
KERNEL_MODULE_COMPONENTS = frozenset({"driver", "kernel_module", "kernel"})


def _text(value: object | None) -> str | None:
    return None if value is None else str(value)


def step_graph(
    before: SoftwareStack,
    after: SoftwareStack,
    order: tuple[tuple[str, ...], ...],
    gates: tuple[Gate, ...],
    estimates: Estimates,
    *,
    prefix: str = "",
    precheck: bool = True,
) -> nx.DiGraph[str]:
    """The DAG of one host's change from ``before`` to ``after``; nodes carry a ``step``, edges "runs after"."""
    graph: nx.DiGraph[str] = nx.DiGraph()
    seq = 0

    def add(kind: StepKind, estimate: int, name: str | None = None, prev: list[str] | None = None,
            **fields: object) -> str:
        nonlocal seq
        seq += 1
        sid = f"{prefix}{seq:02d}-{name or kind.value}"
        needs = tuple(prev or ())
        graph.add_node(sid, seq=seq, step=Step(id=sid, kind=kind, estimate_s=estimate, needs=needs, **fields))
        for p in needs:
            graph.add_edge(p, sid)
        return sid

    last = [add(StepKind.PRECHECK, estimates.precheck)] if precheck else []
    last = [add(StepKind.DRAIN, estimates.cordon + estimates.drain, prev=last)]
    changing = {c for group in order for c in group}
    reboot = False
    for gi, group in enumerate(order, start=1):
        for component in group:
            if component == "kernel_module" and "driver" in changing:
                continue  # the driver package carries the module flavour: one step changes both
            name = "driver" if component == "kernel_module" else component
            needs_reboot = component in KERNEL_MODULE_COMPONENTS
            reboot = reboot or needs_reboot
            last = [add(StepKind.CHANGE, int(getattr(estimates, component)), name=name, prev=last,
                        component=name, from_version=_text(before.component(name)),
                        to_version=_text(after.component(name)), group=gi, needs_reboot=needs_reboot)]
    if reboot:
        last = [add(StepKind.REBOOT, estimates.reboot, prev=last)]
    last = [add(StepKind.VERIFY, estimates.verify, prev=last)]
    for gate in gates:
        last = [add(StepKind.GATE, estimates.gate(gate), name=f"gate-{gate.value}", prev=last, gate=gate.value)]
    add(StepKind.UNCORDON, estimates.uncordon, prev=last)
    return graph


def ordered_steps(graph: nx.DiGraph[str]) -> tuple[Step, ...]:
    """Steps in a stable topological order (ties broken by creation order)."""
    nodes = nx.lexicographical_topological_sort(graph, key=lambda n: graph.nodes[n]["seq"])
    return tuple(graph.nodes[n]["step"] for n in nodes)


def critical_path_s(steps: tuple[Step, ...]) -> int:
    """Seconds from the first step to the last along the longest chain of ``needs``."""
    finish: dict[str, int] = {}
    for s in steps:
        finish[s.id] = s.estimate_s + max((finish[n] for n in s.needs), default=0)
    return max(finish.values(), default=0)


def gate_level(gate: str | None) -> int:
    """``dcgm-r2`` -> 2; other gates run the level-1 checks plus their own."""
    if gate and gate.startswith("dcgm-r") and gate[6:].isdigit():
        return int(gate[6:])
    return 1


@dataclass(frozen=True)
class Pinning:
    """What pinning a host's steps needs beyond the steps: the host, the stack the steps lead to, the drain."""

    host: Host
    stack: SoftwareStack
    drain_reason: str
    drain_timeout_s: int
    prefer_installed: bool = False
    workload_gate: WorkloadGate | None = None

    @property
    def naming(self) -> Naming:
        return Naming.of(self.host.packages)


def pin_steps(steps: tuple[Step, ...], pin: Pinning) -> tuple[tuple[Step, ...], list[str]]:
    """Every step with its playbook, variables, package and exact build; problems name what is missing."""
    problems: list[str] = []
    reboot_later = any(s.kind == StepKind.REBOOT for s in steps)
    own_fm_step = any(s.component == "fabric_manager" for s in steps)
    kernel_moves = any(s.component == "kernel" for s in steps)
    out = []
    for step in steps:
        update = _playbook(step, pin, reboot_later, problems, own_fm_step)
        if kernel_moves and step.kind == StepKind.REBOOT and pin.stack.kernel is not None:
            update["vars"] = {**update["vars"], "reboot_expect_kernel": str(pin.stack.kernel)}  # type: ignore[dict-item]
        out.append(step.model_copy(update=update))
    return tuple(out), problems


def _playbook(step: Step, pin: Pinning, reboot_later: bool, problems: list[str],
              own_fm_step: bool = False) -> dict[str, object]:
    stack = pin.stack
    driver = str(stack.driver) if stack.driver is not None else ""
    if step.kind in (StepKind.PRECHECK, StepKind.VERIFY):
        return {"playbook": "facts.yml", "vars": {}}
    if step.kind == StepKind.DRAIN:
        return {"playbook": "drain.yml",
                "vars": {"drain_reason": pin.drain_reason, "drain_timeout_s": pin.drain_timeout_s}}
    if step.kind == StepKind.UNCORDON:
        return {"playbook": "uncordon.yml", "vars": {"drain_reason": pin.drain_reason}}
    if step.kind == StepKind.GATE:
        gate_vars: dict[str, VarValue] = {"gate_level": gate_level(step.gate), "gate_expect_driver": driver}
        if step.gate == Gate.NCCL_TESTS.value:  # the probe's all-reduce over the host's GPUs
            gate_vars["gate_nccl"] = True
        if pin.workload_gate is not None:
            gate_vars["gate_workload"] = pin.workload_gate.model_dump(mode="json")
        return {"playbook": "gate.yml", "vars": gate_vars}
    if step.kind == StepKind.REBOOT:
        flavor = str(stack.kernel_module) if stack.kernel_module is not None else "auto"
        return {"playbook": "reboot.yml", "vars": {"reboot_expect_driver": driver, "reboot_expect_flavor": flavor}}
    assert step.component is not None
    build = _build(step.component, pin, problems)
    if build is None:
        return {"package": package_name(step.component, stack, pin.naming), "build": None, "playbook": None,
                "vars": {}}
    package, version = build
    if not version:  # not offered: the host is excluded (upgrade) or its rollback fails at once (rollback)
        return {"package": package, "build": None, "playbook": None, "vars": {}}
    variables: dict[str, VarValue] = {"upgrade_host_component": step.component, "upgrade_host_version": version,
                                      "upgrade_host_package": package, "upgrade_host_reboot": False}
    if pin.host.packages.manager == "dnf":
        variables["upgrade_host_package_manager"] = "dnf"
    if step.component == "driver":
        variables["upgrade_host_kernel_module"] = str(stack.kernel_module or "auto")
        kernel = _text(pin.host.stack.kernel)
        extras = driver_extras(stack, pin.naming, kernel, pin.host.packages.available, pin.host.packages.installed)
        variables.update(extras)
        variables.update(_precompiled(pin, kernel, extras, problems))
        variables.update(_pinning(pin, extras, problems))
        with_packages = companions(step.component, package, version, pin.naming, extras,
                                   pin.host.packages.available)
        if with_packages:
            variables["upgrade_host_with_packages"] = ",".join(with_packages)
        if pin.host.nvswitch and stack.fabric_manager is not None and not own_fm_step:  # installed once
            fm = _build("fabric_manager", pin, problems)
            if fm is not None and fm[1]:
                variables["upgrade_driver_fabric_manager_version"] = fm[1]
    if step.component == "kernel":
        variables.update(_kernel_vars(step, pin, version, problems))
    if step.component == "cudnn":
        variables["upgrade_host_cudnn_cuda_major"] = str(cudnn_cuda_major(stack))
    if step.component == "fabric_manager":
        variables["upgrade_fabric_manager_start"] = not reboot_later
    if pin.prefer_installed:  # a rollback step: the package's pinning goes back to what it was before
        held = pin.host.packages.held
        variables["upgrade_package_hold"] = package in held or package not in pin.host.packages.installed
    return {"package": package, "build": version, "playbook": "upgrade_host.yml", "vars": variables}


def _build(component: str, pin: Pinning, problems: list[str]) -> tuple[str, str] | None:
    """(package, exact build) for the component at ``pin.stack``; None when the stack leaves it alone."""
    planned = pin.stack.component(component)
    package = package_name(component, pin.stack, pin.naming)
    if planned is None or package is None:
        return None
    offered = tuple(b for b in pin.host.packages.available.get(package, ()) if is_build(b))
    installed = pin.host.packages.installed.get(package)
    if pin.prefer_installed and installed and is_build(installed) and matches(component, str(planned), installed):
        return package, installed
    build = pick_build(component, str(planned), offered, pin.host.packages.manager)
    if build is None:
        have = ", ".join(upstream(b) for b in offered[:6]) or "none"
        problems.append(f"{package} {planned} is not offered by its repositories ({pin.host.packages.manager}; "
                        f"offered: {have})")
        return package, ""
    return package, build


def _kernel_vars(step: Step, pin: Pinning, build: str, problems: list[str]) -> dict[str, VarValue]:
    """The kernel step: the release booted next, the packages installed and held with its image (its NVIDIA
    module among them), and on a way back the packages of the kernel left behind (removed, so that the boot
    loader's newest entry is the planned kernel again; the planned one is still installed)."""
    stack, offered = pin.stack, pin.host.packages.available
    release = str(stack.kernel)
    out: dict[str, VarValue] = {"upgrade_host_kernel_release": release}
    if pin.prefer_installed:  # back to the kernel the host had: hold what of it is installed
        installed = pin.host.packages.installed
        names: tuple[str, ...] = kernel_companions(stack, pin.naming, build, {n: (build,) for n in installed})[0]
    else:
        names, missing = kernel_companions(stack, pin.naming, build, offered)
        if missing:
            problems.append(missing)
    if names:
        out["upgrade_host_with_packages"] = ",".join(names)
    left = step.from_version
    if left and left != release:
        old = stack.model_copy(update={"kernel": KernelVersion(left)})
        old_package = package_name("kernel", old, pin.naming)
        old_build = kernel_build(left)
        if pin.naming.source.manager == "dnf":  # one package name for every kernel: name-version-release
            old_names = ("kernel", *kernel_companions(old, pin.naming, old_build, offered)[0])
            remove = tuple(f"{n}-{old_build}" for n in old_names)
        else:  # every package of that release the host could have: image, modules, headers, NVIDIA's module
            known = {*offered, *pin.host.packages.installed}
            remove = (old_package or "", *sorted(n for n in known if n.startswith("linux-") and n.endswith(f"-{left}")
                                                 and n != old_package))
        if KernelVersion(left) > KernelVersion(release):
            out["upgrade_host_kernel_remove"] = ",".join(n for n in remove if n)
    return out


def _precompiled(pin: Pinning, kernel: str | None, extras: dict[str, str], problems: list[str]) -> dict[str, VarValue]:
    """Ubuntu archive, a host on precompiled modules: the new branch's module package for its running kernel at
    the newest build offered (installed and held with the driver); not offered, the host is left out with one
    line rather than rebooted into a driver without a module."""
    packages = pin.host.packages
    if pin.naming.source is not PackageSource.UBUNTU or not any(PRECOMPILED.match(n) for n in packages.installed):
        return {}
    module = extras.get("upgrade_host_module_package") or precompiled_module(pin.stack, pin.naming, kernel)
    if module is None:
        return {}
    build = _offered_build(pin, module)
    if build is None:
        problems.append(f"{module} is not offered: the precompiled NVIDIA module of driver {pin.stack.driver} for "
                        f"kernel {kernel}")
        return {}
    return {"upgrade_host_module_package": module, "upgrade_host_module_version": build}


def _pinning(pin: Pinning, extras: dict[str, str], problems: list[str]) -> dict[str, VarValue]:
    """NVIDIA's CUDA repository on Ubuntu/Debian from 590: the pinning package's exact build, installed and held
    before the driver; not offered, the host is left out with one line."""
    name = extras.get("upgrade_host_pinning_package")
    if name is None:
        return {}
    build = _offered_build(pin, name)
    if build is None:
        problems.append(f"{name} is not offered: it locks the driver's branch (NVIDIA's CUDA repository from 590)")
        return {}
    return {"upgrade_host_pinning_version": build}


def _offered_build(pin: Pinning, name: str) -> str | None:
    """A package that goes with the driver: on a way back the build the host had, else the newest offered."""
    packages = pin.host.packages
    had = packages.installed.get(name) if pin.prefer_installed else None
    return had or newest((b for b in packages.available.get(name, ()) if is_build(b)), packages.manager)
