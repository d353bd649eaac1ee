"""Package sources: detected on the host, named by the planner per source, one line for a host it cannot tell."""

from __future__ import annotations

from pathlib import Path

from orchestrator.hostside.collector import (
    components_from_packages,
    detect_source,
    parse_os_release,
    parse_versionlock,
    rpm_family,
)
from orchestrator.knowledge import load_knowledge
from orchestrator.model.desired import load_desired
from orchestrator.model.facts import FactsSnapshot
from orchestrator.model.fleet import build_fleet
from orchestrator.model.inventory import host_from_vars
from orchestrator.model.stack import Fleet, HostPackages, PackageSource, SoftwareStack
from orchestrator.planner import build_plan
from orchestrator.planner.packages import Naming, driver_extras, kernel_flavour, package_name
from tests.planner.fixtures import load_fleet
from tests.support.simhost import REPOSITORY

SCENARIO = Path(__file__).parents[1] / "planner" / "scenarios" / "upgrade-h100"
ROCKY = 'NAME="Rocky Linux"\nID="rocky"\nID_LIKE="rhel centos fedora"\nVERSION_ID="9.4"\n'
CUDA_REPO = ("[cuda-rhel9-x86_64]\nname=cuda-rhel9-x86_64\n"
             "baseurl=https://developer.download.nvidia.com/compute/cuda/repos/rhel9/x86_64\n")


def test_rpm_family_comes_from_os_release_id_or_id_like() -> None:
    assert rpm_family(parse_os_release(ROCKY))
    assert rpm_family(parse_os_release('ID=almalinux\n'))
    assert not rpm_family(parse_os_release('ID=ubuntu\nID_LIKE=debian\n'))
    assert not rpm_family(None)


def test_detect_source_on_rpm_hosts() -> None:
    assert detect_source(True, "dnf", {"nvidia-open": "3:580.95.05-1.el9"}, {}, {}) == \
        ("cuda-dnf", "installed nvidia-open")
    assert detect_source(True, "dnf", {}, {}, {"/etc/yum.repos.d/cuda-rhel9.repo": CUDA_REPO})[0] == "cuda-dnf"
    source, why = detect_source(True, "dnf", {}, {}, {"/etc/yum.repos.d/rocky.repo": "[baseos]\n"})
    assert source is None and "no NVIDIA driver RPM" in why
    assert detect_source(True, "unknown", {}, {}, {})[0] is None


def test_detect_source_on_apt_hosts() -> None:
    assert detect_source(False, "apt", {"nvidia-driver-580-server-open": "580.95.05-0ubuntu0.24.04.1"}, {}, {})[0] \
        == "ubuntu"
    assert detect_source(False, "apt", {"cuda-keyring": "1.1-1"}, {}, {})[0] == "cuda-apt"
    sources = {"/etc/apt/sources.list.d/cuda.list":
               "deb https://developer.download.nvidia.com/compute/cuda/repos/ubuntu2404/x86_64/ /\n"}
    assert detect_source(False, "apt", {}, {"nvidia-driver-580": ["580.95.05-0ubuntu1"]}, sources)[0] == "cuda-apt"
    assert detect_source(False, "apt", {}, {"nvidia-driver-580": ["580.95.05-0ubuntu1"]}, {})[0] == "ubuntu"
    source, why = detect_source(False, "apt", {}, {}, {})
    assert source is None and "no NVIDIA driver package" in why


def test_rpm_package_names_map_to_components() -> None:
    found = components_from_packages({"nvidia-driver": "3:580.95.05-1.el9",
                                      "kmod-nvidia-open-dkms": "3:580.95.05-1.el9",
                                      "nvidia-fabric-manager": "580.95.05-1", "libnccl": "2.21.5-1+cuda12.4",
                                      "cuda-toolkit-12-8": "12.8.1-1", "datacenter-gpu-manager-4-core": "1:4.2.3-1"})
    assert found["driver"]["version"].startswith("3:580.95.05")
    assert found["fabric_manager"]["package"] == "nvidia-fabric-manager"
    assert found["nccl"] == {"version": "2.21.5-1+cuda12.4", "package": "libnccl", "source": "package"}
    assert found["cuda"]["version"] == "12.8.1"


def test_versionlock_list_names_the_locked_packages() -> None:
    text = "# added by dnf\nnvidia-open-3:580.95.05-1.el9.*\nkmod-nvidia-open-dkms-3:580.95.05-1.el9.*\n!excluded-1-1\n"
    assert parse_versionlock(text) == ["kmod-nvidia-open-dkms", "nvidia-open"]


def test_each_source_names_its_own_packages() -> None:
    stack = SoftwareStack.model_validate({"driver": "580.95.05", "kernel_module": "open",
                                          "fabric_manager": "580.95.05", "nccl": "2.28.9-1+cuda13.0"})
    closed = SoftwareStack.model_validate({"driver": "535.183.01", "kernel_module": "proprietary"})
    offered = {"nvidia-driver-580-server-open": ("580.95.05-0ubuntu0.24.04.1",)}
    ubuntu_server = Naming.of(HostPackages(source=PackageSource.UBUNTU, available=offered))
    assert ubuntu_server.server
    assert package_name("driver", stack, ubuntu_server) == "nvidia-driver-580-server-open"
    assert package_name("driver", stack, Naming(PackageSource.UBUNTU)) == "nvidia-driver-580-open"
    assert package_name("driver", stack, Naming(PackageSource.CUDA_APT)) == "nvidia-open-580"
    assert package_name("driver", closed, Naming(PackageSource.CUDA_APT)) == "cuda-drivers-535"
    assert package_name("driver", stack, Naming(PackageSource.CUDA_DNF)) == "nvidia-open"
    assert package_name("driver", closed, Naming(PackageSource.CUDA_DNF)) == "cuda-drivers"
    assert package_name("fabric_manager", stack, Naming(PackageSource.CUDA_DNF)) == "nvidia-fabric-manager"
    assert package_name("nccl", stack, Naming(PackageSource.CUDA_DNF)) == "libnccl"
    assert package_name("nccl", stack, Naming(PackageSource.UBUNTU)) == "libnccl2"
    assert driver_extras(stack, Naming(PackageSource.CUDA_DNF), "5.14.0-427.13.1.el9_4.x86_64") == {
        "upgrade_host_module_package": "kmod-nvidia-open-dkms", "upgrade_host_module_stream": "nvidia-driver:580-open"}
    assert driver_extras(closed, Naming(PackageSource.CUDA_DNF), None)["upgrade_host_module_stream"] == \
        "nvidia-driver:535-dkms"
    v590 = SoftwareStack.model_validate({"driver": "590.44.01", "kernel_module": "open"})
    assert package_name("driver", v590, Naming(PackageSource.CUDA_APT)) == "nvidia-open"
    assert driver_extras(v590, Naming(PackageSource.CUDA_APT), None) == {
        "upgrade_host_pinning_package": "nvidia-driver-pinning-590"}
    # the exact version's pinning package where the repository offers it
    assert driver_extras(v590, Naming(PackageSource.CUDA_APT), None, ["nvidia-driver-pinning-590.44.01"]) == {
        "upgrade_host_pinning_package": "nvidia-driver-pinning-590.44.01"}
    # a host on precompiled modules gets the new branch's package for the kernel it runs (not the flavour's
    # metapackage, which would pull the newest kernel); a host on DKMS keeps DKMS
    module = "linux-modules-nvidia-580-server-open-6.8.0-45-generic"
    on_precompiled = ["linux-modules-nvidia-535-server-6.8.0-45-generic"]
    offered_modules = [module, "linux-modules-nvidia-580-server-open-generic"]
    assert driver_extras(stack, ubuntu_server, "6.8.0-45-generic", offered_modules, on_precompiled) == {
        "upgrade_host_module_package": module}
    assert driver_extras(stack, ubuntu_server, "6.8.0-45-generic", offered_modules, ["nvidia-dkms-535"]) == {}
    assert driver_extras(stack, ubuntu_server, "6.8.0-45-generic", [], on_precompiled) == {}  # not offered
    assert kernel_flavour("5.15.0-1063-nvidia-64k") == "nvidia-64k"
    assert kernel_flavour("5.14.0-427.13.1.el9_4.x86_64") is None


def _rpm_repository() -> dict[str, tuple[str, ...]]:
    """The simulated repository as NVIDIA's CUDA repository for RHEL 9 names and versions it."""
    rename = {"nvidia-driver-580-open": "nvidia-open", "nvidia-driver-535": "cuda-drivers",
              "nvidia-fabricmanager-580": "nvidia-fabric-manager", "nvidia-fabricmanager-535": "nvidia-fabric-manager",
              "libnccl2": "libnccl"}
    out: dict[str, list[str]] = {}
    for name, builds in REPOSITORY.items():
        if name == "nvidia-driver-580":
            continue
        for b in builds:
            new = rename.get(name, name)
            build = f"3:{b.split('-')[0]}-1.el9" if new in ("nvidia-open", "cuda-drivers") else b
            out.setdefault(new, []).append(build)
    return {k: tuple(v) for k, v in out.items()}


def _cuda_apt_repository() -> dict[str, tuple[str, ...]]:
    rename = {"nvidia-driver-580-open": "nvidia-open-580", "nvidia-driver-535": "cuda-drivers-535"}
    return {rename.get(k, k): tuple(v) for k, v in REPOSITORY.items() if k != "nvidia-driver-580"}


def test_plan_names_each_hosts_source_packages_and_classes_split_by_source() -> None:
    fleet, unknown, now = load_fleet(SCENARIO / "fleet.yaml")
    desired = load_desired(SCENARIO / "desired.yaml")
    h1, h2, h3, h4 = fleet.hosts
    h3 = h3.model_copy(update={"packages": HostPackages(manager="dnf", source=PackageSource.CUDA_DNF,
                                                        available=_rpm_repository())})
    h4 = h4.model_copy(update={"packages": HostPackages(manager="apt", source=PackageSource.CUDA_APT,
                                                        available=_cuda_apt_repository())})
    plan = build_plan(Fleet(hosts=(h1, h2, h3, h4)), desired, None, load_knowledge(), now, unknown=unknown)
    assert not plan.excluded

    def step(host: str, component: str) -> tuple[str | None, str | None, dict[str, object]]:
        s = next(s for s in plan.host(host).steps if s.component == component)
        return s.package, s.build, dict(s.vars)

    pkg, build, variables = step("h3", "driver")
    assert (pkg, build) == ("nvidia-open", "3:580.95.05-1.el9")
    assert variables["upgrade_host_module_package"] == "kmod-nvidia-open-dkms"
    assert variables["upgrade_host_module_stream"] == "nvidia-driver:580-open"
    assert step("h3", "fabric_manager")[0] == "nvidia-fabric-manager"
    assert step("h3", "nccl")[:2] == ("libnccl", "2.28.9-1+cuda13.0")
    assert step("h4", "driver")[:2] == ("nvidia-open-580", "580.95.05-0ubuntu1")
    assert step("h1", "driver")[:2] == ("nvidia-driver-580-open", "580.95.05-0ubuntu1")
    rollback = {s.component: s.package for s in plan.host("h3").rollback if s.component}
    assert rollback["driver"] == "cuda-drivers"
    cls = {r.name: r.cls for r in plan.rows}
    assert cls["h1"] == cls["h2"] and len({cls["h1"], cls["h3"], cls["h4"]}) == 3  # one class per source


def test_a_package_missing_from_the_hosts_repository_excludes_that_host_with_one_line() -> None:
    fleet, unknown, now = load_fleet(SCENARIO / "fleet.yaml")
    desired = load_desired(SCENARIO / "desired.yaml")
    repo = {k: v for k, v in _rpm_repository().items() if k != "nvidia-open"}
    h3 = fleet.hosts[2].model_copy(update={"packages": HostPackages(manager="dnf", source=PackageSource.CUDA_DNF,
                                                                    available=repo)})
    plan = build_plan(Fleet(hosts=(*fleet.hosts[:2], h3, fleet.hosts[3])), desired, None, load_knowledge(), now,
                      unknown=unknown)
    [excluded] = plan.excluded
    assert (excluded.host, excluded.kind) == ("h3", "no-build")
    assert "nvidia-open 580.95.05 is not offered" in excluded.reason and "\n" not in excluded.reason
    assert "h3" not in [h for w in plan.waves for h in w.hosts]


def _facts(index: dict[str, object]) -> dict[str, object]:
    return {"host": "n1", "collected_at": "2026-12-01T08:00:00Z", "kernel": "5.14.0-427.13.1.el9_4.x86_64",
            "package_index": index, "driver": {"status": "not_installed"}, "cuda": {}, "cudnn": {}, "nccl": {},
            "fabric_manager": {}, "dcgm": {}, "container_toolkit": {}}


def _snapshot(hosts: list[dict[str, object]]) -> FactsSnapshot:
    return FactsSnapshot.model_validate({"collected_at": "2026-12-01T08:00:00Z", "hosts": hosts})


def test_a_host_whose_source_cannot_be_detected_is_left_out_with_one_line() -> None:
    inv = [host_from_vars("inv", "n1", {"gpu_pool": "p", "gpu_model": "H100"}, [])]
    snap = _snapshot([_facts({"manager": "dnf", "source": None,
                              "source_evidence": "no NVIDIA driver RPM installed"})])
    built = build_fleet(inv, snap)
    assert not built.fleet.hosts
    assert built.unknown["n1"].startswith("package source not detected (no NVIDIA driver RPM installed)")
    assert "upgrade_package_source" in built.unknown["n1"]
    # the inventory's setting wins over detection
    inv = [host_from_vars("inv", "n1", {"gpu_pool": "p", "gpu_model": "H100",
                                        "gpu_package_source": "cuda-dnf"}, [])]
    [host] = build_fleet(inv, snap).fleet.hosts
    assert host.packages.source is PackageSource.CUDA_DNF
    # snapshots from before detection (no source key) keep the one source their manager implied
    legacy = _snapshot([_facts({"manager": "apt"})])
    inv = [host_from_vars("inv", "n1", {"gpu_pool": "p", "gpu_model": "H100"}, [])]
    assert build_fleet(inv, legacy).fleet.hosts[0].packages.source is PackageSource.UBUNTU


def test_old_rhel_cuda_repository_names_map_to_components() -> None:
    """The names a RHEL 7 host of NVIDIA's CUDA repository lists (``rpm -qa``) from issue 18."""
    found = components_from_packages({"nvidia-driver-latest-dkms-cuda": "3:440.64.00-1.el7", "cuda": "10.2.89-1"})
    assert found["driver"]["version"] == "3:440.64.00-1.el7"
    assert found["cuda"]["version"] == "10.2.89"


def test_the_ubuntu_series_follows_the_installed_driver_then_what_is_offered() -> None:
    both = {"nvidia-driver-580-server-open": ("580.95.05-0ubuntu0.24.04.1",),
            "nvidia-driver-580-open": ("580.95.05-0ubuntu0.24.04.1",)}
    desktop = HostPackages(source=PackageSource.UBUNTU, available=both,
                           installed={"nvidia-driver-535": "535.183.01-0ubuntu1"})
    assert not Naming.of(desktop).server
    assert Naming.of(HostPackages(source=PackageSource.UBUNTU, available=both)).server
    server = HostPackages(source=PackageSource.UBUNTU, installed={"nvidia-driver-535-server": "535.183.01-0ubuntu1"})
    assert Naming.of(server).server
