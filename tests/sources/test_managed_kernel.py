"""The kernel as an optional managed component: planned with its NVIDIA module from the host's own source, or
the host left out with one line; the reboot checks the kernel; a way back removes the newer kernel."""

from __future__ import annotations

from pathlib import Path

from orchestrator.knowledge import load_knowledge
from orchestrator.model.desired import DesiredState, load_desired
from orchestrator.model.stack import Fleet, Host, HostPackages, PackageSource
from orchestrator.model.versions import KernelVersion
from orchestrator.planner import Plan, build_plan
from tests.planner.fixtures import load_fleet
from tests.sources.test_package_sources import _rpm_repository

SCENARIO = Path(__file__).parents[1] / "planner" / "scenarios" / "upgrade-h100"
OLD, NEW, BUILD = "6.8.0-48-generic", "6.8.0-90-generic", "6.8.0-90.91"


def _plan(offer: dict[str, tuple[str, ...]], kernel: str = NEW, source: PackageSource = PackageSource.UBUNTU,
          running: str = OLD, manager: str = "apt", installed: dict[str, str] | None = None,
          repository: dict[str, tuple[str, ...]] | None = None) -> Plan:
    installed = installed if installed is not None else {f"linux-image-{running}": "6.8.0-48.48"}
    fleet, unknown, now = load_fleet(SCENARIO / "fleet.yaml")
    desired = load_desired(SCENARIO / "desired.yaml")
    pools = {name: pool.model_copy(update={"target": pool.target.model_copy(update={"kernel": KernelVersion(kernel)})})
             for name, pool in desired.pools.items()}
    desired = DesiredState.model_validate({**desired.model_dump(mode="json", exclude_none=True),
                                           "pools": {k: v.model_dump(mode="json", exclude_none=True)
                                                     for k, v in pools.items()}})

    def moved(h: Host) -> Host:
        pk = h.packages
        return h.model_copy(update={
            "stack": h.stack.model_copy(update={"kernel": KernelVersion(running)}),
            "packages": HostPackages(manager=manager, source=source, held=pk.held,
                                     installed={**pk.installed, **installed},
                                     available={**(repository if repository is not None else pk.available),
                                                **offer})})

    return build_plan(Fleet(hosts=tuple(moved(h) for h in fleet.hosts)), desired, None, load_knowledge(), now,
                      unknown=unknown)


def test_the_kernel_moves_after_the_driver_with_its_precompiled_module_and_the_reboot_checks_it() -> None:
    module = f"linux-modules-nvidia-580-open-{NEW}"
    plan = _plan({f"linux-image-{NEW}": (BUILD,), f"linux-modules-{NEW}": (BUILD,), module: (BUILD,),
                  f"linux-headers-{NEW}": (BUILD,)})
    assert not plan.excluded
    steps = plan.host("h1").steps
    kinds = [s.component or s.kind.value for s in steps]
    assert kinds.index("driver") < kinds.index("kernel") < kinds.index("reboot")
    assert kinds.count("reboot") == 1
    step = next(s for s in steps if s.component == "kernel")
    assert (step.package, step.build, step.needs_reboot) == (f"linux-image-{NEW}", BUILD, True)
    assert step.vars["upgrade_host_kernel_release"] == NEW
    # the archive's precompiled module wins over headers for DKMS
    assert step.vars["upgrade_host_with_packages"] == f"linux-modules-{NEW},{module}"
    assert "upgrade_host_kernel_remove" not in step.vars  # the old kernel stays installed as a fallback
    reboot = next(s for s in steps if s.kind.value == "reboot")
    assert reboot.vars["reboot_expect_kernel"] == NEW
    # the way back boots the old kernel: the new one's packages go
    back = next(s for s in plan.host("h1").rollback if s.component == "kernel")
    assert back.to_version == OLD
    assert back.vars["upgrade_host_kernel_remove"] == (
        f"linux-image-{NEW},linux-headers-{NEW},linux-modules-{NEW},{module}")
    assert next(s for s in plan.host("h1").rollback if s.kind.value == "reboot").vars["reboot_expect_kernel"] == OLD


def test_without_the_precompiled_module_the_headers_let_dkms_build_it() -> None:
    plan = _plan({f"linux-image-{NEW}": (BUILD,), f"linux-headers-{NEW}": (BUILD,)})
    step = next(s for s in plan.host("h2").steps if s.component == "kernel")
    assert step.vars["upgrade_host_with_packages"] == f"linux-headers-{NEW}"


def test_a_kernel_without_a_module_in_the_repositories_leaves_the_host_out_with_one_line() -> None:
    plan = _plan({f"linux-image-{NEW}": (BUILD,), f"linux-headers-{NEW}": ("6.8.0-90.92",)})
    assert {e.host for e in plan.excluded} == {"h1", "h2", "h3", "h4"}
    reason = plan.excluded[0].reason
    assert "\n" not in reason and f"linux-headers-{NEW}" in reason and "without an NVIDIA module" in reason
    assert not [h for w in plan.waves for h in w.hosts]


def test_a_kernel_not_offered_at_all_is_named() -> None:
    plan = _plan({})
    assert plan.excluded and f"linux-image-{NEW}" in plan.excluded[0].reason


def test_rhel_kernel_packages_at_one_build_with_kernel_devel_for_dkms() -> None:
    old, new, build = "5.14.0-427.el9.x86_64", "5.14.0-570.el9.x86_64", "5.14.0-570.el9"
    offer = {n: (build, "5.14.0-427.el9") for n in ("kernel", "kernel-core", "kernel-modules", "kernel-devel")}
    plan = _plan(offer, kernel=new, running=old, source=PackageSource.CUDA_DNF, manager="dnf",
                 installed={"kernel": "5.14.0-427.el9"}, repository=_rpm_repository())
    assert not plan.excluded, [e.reason for e in plan.excluded]
    step = next(s for h in plan.hosts for s in h.steps if s.component == "kernel")
    assert (step.package, step.build) == ("kernel", build)
    assert step.vars["upgrade_host_with_packages"] == "kernel-core,kernel-modules,kernel-devel"
    assert step.vars["upgrade_host_package_manager"] == "dnf"
    back = next(s for h in plan.hosts for s in h.rollback if s.component == "kernel")
    assert back.vars["upgrade_host_kernel_remove"] == ",".join(
        f"{n}-{build}" for n in ("kernel", "kernel-core", "kernel-modules", "kernel-devel"))


def test_an_unmanaged_kernel_plans_no_kernel_step() -> None:
    fleet, unknown, now = load_fleet(SCENARIO / "fleet.yaml")
    plan = build_plan(fleet, load_desired(SCENARIO / "desired.yaml"), None, load_knowledge(), now, unknown=unknown)
    assert not any(s.component == "kernel" for h in plan.hosts for s in (*h.steps, *h.rollback))


def test_the_running_kernel_must_match_only_when_the_plan_moves_it() -> None:
    from orchestrator.model.stack import SoftwareStack
    from orchestrator.run.stacks import kernel_moves, mismatches

    old = SoftwareStack.model_validate({"driver": "580.95.05", "kernel": OLD})
    new = old.model_copy(update={"kernel": KernelVersion(NEW)})
    assert kernel_moves(old, new) and not kernel_moves(old, old) and not kernel_moves(old, None)
    assert mismatches(new, old) == []  # an unmanaged kernel may change under the plan
    assert mismatches(new, old, kernel=True) == [f"kernel is {NEW}, planned {OLD}"]


def test_a_host_on_precompiled_modules_gets_the_new_branchs_module_for_its_kernel_or_is_left_out() -> None:
    old_module, new_module = f"linux-modules-nvidia-535-{OLD}", f"linux-modules-nvidia-580-open-{OLD}"
    installed = {f"linux-image-{OLD}": "6.8.0-48.48", old_module: "6.8.0-48.48+1"}
    plan = _plan({new_module: ("6.8.0-48.48+1", "6.8.0-48.48+2")}, kernel=OLD, installed=installed)
    assert not plan.excluded
    step = next(s for s in plan.host("h1").steps if s.component == "driver")
    assert step.vars["upgrade_host_module_package"] == new_module
    assert step.vars["upgrade_host_module_version"] == "6.8.0-48.48+2"  # newest offered, by dpkg's order
    assert not any(s.component == "kernel" for s in plan.host("h1").steps)  # the kernel does not move
    back = next(s for s in plan.host("h1").rollback if s.component == "driver")
    assert (back.vars["upgrade_host_module_package"], back.vars["upgrade_host_module_version"]) == (
        old_module, "6.8.0-48.48+1")
    # not offered: the host is left out with one line instead of rebooting into a driver without a module
    plan = _plan({}, kernel=OLD, installed=installed)
    assert {e.host for e in plan.excluded} == {"h1", "h2", "h3", "h4"}
    assert f"{new_module} is not offered" in plan.excluded[0].reason and "\n" not in plan.excluded[0].reason
