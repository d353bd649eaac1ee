"""The fact collector on the real H100 captures and on simulated hosts in each failure state."""

from __future__ import annotations

from pathlib import Path

import pytest

from orchestrator.adapters.facts import load_snapshot
from orchestrator.errors import FactsError
from orchestrator.hostside.collector import (
    classify_nvidia_smi_failure,
    collect,
    components_from_packages,
    parse_compute_capabilities,
    parse_cuda_version_txt,
    parse_header_version,
    parse_nvcc_version,
    parse_nvidia_smi_xml,
    parse_os_release,
    parse_package_list,
    parse_proc_driver_version,
    parse_query_gpu_csv,
)
from orchestrator.model.facts import DriverStatus, HostFacts, KernelModuleFacts, parse_host_facts
from orchestrator.model.stack import KernelModuleFlavor
from orchestrator.model.versions import CudaVersion, DriverVersion, NcclVersion
from tests.support.simhost import SimHost

CAPTURES = Path(__file__).parent / "fixtures" / "real-gpu" / "h100-r580"


def facts_of(host: SimHost) -> HostFacts:
    return parse_host_facts("node", "2026-11-25T00:00:00+00:00", collect(host.run, host.read, host.listdir,
                                                                        host.resolve, host.modules_root))


# ---- real captures

def test_nvidia_smi_xml_real_capture() -> None:
    parsed = parse_nvidia_smi_xml((CAPTURES / "nvidia-smi-q.xml").read_text())
    assert parsed["driver_version"] == "580.159.04" and parsed["cuda_version"] == "13.0"
    [gpu] = parsed["gpus"]
    assert gpu["name"] == "NVIDIA H100 80GB HBM3"
    assert gpu["uuid"] == "GPU-fff3ce4f-2c9e-27a1-a554-b3d9b01a8b44"
    assert gpu["pci_bus_id"] == "00000000:00:06.0" and gpu["memory_total_mib"] == 81559
    assert gpu["architecture"] == "Hopper" and gpu["mig_mode"] == "Disabled"


def test_query_gpu_csv_real_capture_uses_header_names() -> None:
    [row] = parse_query_gpu_csv((CAPTURES / "query-gpu.csv").read_text())
    assert row["driver_version"] == "580.159.04" and row["compute_cap"] == "9.0"
    # asked as clocks_throttle_reasons.active, answered under the new name
    assert row["clocks_event_reasons.active"] == "0x0000000000000001"
    assert row["memory.total"] == "81559 MiB"


def test_proc_version_open_and_proprietary() -> None:
    real = (CAPTURES / "system.txt").read_text()
    assert parse_proc_driver_version(real) == {"version": "580.159.04", "flavor": "open"}
    proprietary = "NVRM version: NVIDIA UNIX x86_64 Kernel Module  535.183.01  Sun May 12 19:39:15 UTC 2024\n"
    assert parse_proc_driver_version(proprietary) == {"version": "535.183.01", "flavor": "proprietary"}
    with pytest.raises(ValueError):
        parse_proc_driver_version("garbage\n")


def test_nvcc_os_release_and_old_version_txt() -> None:
    system = (CAPTURES / "system.txt").read_text()
    assert parse_nvcc_version(system) == "13.0.88"
    assert parse_os_release(system)["id"] == "ubuntu" and parse_os_release(system)["version_id"] == "24.04"
    assert parse_cuda_version_txt("CUDA Version 11.0.228\n") == "11.0.228"


def test_package_list_and_components() -> None:
    text = ("libnccl2\t2.21.5-1+cuda12.4\thi \nlibcudnn9-cuda-12\t9.5.1.17-1\tii \n"
            "nvidia-driver-580-open\t580.95.05-0ubuntu1\tii \ncuda-toolkit-12-8\t12.8.1-1\tii \n"
            "cuda-toolkit-12-2\t12.2.2-1\tii \nnvidia-driver-535\t535.183.01-0ubuntu1\trc \n"
            "datacenter-gpu-manager-4-core\t1:4.2.3-1\tii \n")
    packages = parse_package_list(text)
    assert "nvidia-driver-535" not in packages  # removed, config files only
    comps = components_from_packages(packages)
    assert comps["driver"]["package"] == "nvidia-driver-580-open" and comps["driver"]["flavor"] == "open"
    assert comps["cuda"]["version"] == "12.8.1" and comps["cuda"]["also"] == ["cuda-toolkit-12-2=12.2.2-1"]
    assert comps["nccl"]["version"] == "2.21.5-1+cuda12.4"
    assert comps["dcgm"]["version"] == "1:4.2.3-1"
    rpm = parse_package_list("libnccl\t(none):2.21.5-1+cuda12.4\tii \n")
    assert rpm == {"libnccl": "2.21.5-1+cuda12.4"}


def test_header_versions() -> None:
    cudnn = "#define CUDNN_MAJOR 9\n#define CUDNN_MINOR 5\n#define CUDNN_PATCHLEVEL 1\n"
    nccl = "#define NCCL_MAJOR 2\n#define NCCL_MINOR 28\n#define NCCL_PATCH 9\n"
    assert parse_header_version(cudnn, "CUDNN") == "9.5.1"
    assert parse_header_version(nccl, "NCCL") == "2.28.9"
    assert parse_header_version("#define CUDNN_MAJOR 9\n", "CUDNN") is None


# ---- whole collection on simulated hosts

def test_healthy_host_full_stack() -> None:
    host = SimHost(packages={"nvidia-driver-580-open": "580.159.04-0ubuntu1", "libnccl2": "2.28.9-1+cuda13.0",
                             "libcudnn9-cuda-13": "9.19.0.56-1", "nvidia-fabricmanager-580": "580.159.04-1",
                             "nvidia-container-toolkit": "1.17.8-1"},
                   held={"nvidia-driver-580-open", "libnccl2"}, cuda="13.0.2")
    facts = facts_of(host)
    stack = facts.stack()
    assert facts.driver.status == DriverStatus.OK and facts.problems == []
    assert stack.driver == DriverVersion("580.159.04") and stack.kernel_module == KernelModuleFlavor.OPEN
    assert stack.cuda == CudaVersion("13.0.2") and stack.nccl == NcclVersion("2.28.9")
    assert stack.fabric_manager == DriverVersion("580.159.04")
    assert facts.gpu_model() is not None and facts.gpu_model().name == "H100"  # type: ignore[union-attr]
    assert len(facts.gpus) == 8 and facts.driver.cuda_driver_api == "13.0"
    assert facts.held_packages == ["libnccl2", "nvidia-driver-580-open"]


def test_no_driver_is_reported_not_raised() -> None:
    facts = facts_of(SimHost(driver=None, packages={}))
    assert facts.driver.status == DriverStatus.NOT_INSTALLED
    assert facts.problems == ["driver: nvidia-smi not found: no NVIDIA driver installed"]
    assert facts.stack().driver is None and facts.gpus == []


def test_driver_not_loaded() -> None:
    facts = facts_of(SimHost(driver_state="not_loaded",
                             packages={"nvidia-driver-535": "535.183.01-0ubuntu1"}))
    assert facts.driver.status == DriverStatus.NOT_LOADED
    assert "couldn't communicate with the NVIDIA driver" in facts.problems[0]
    # nvidia-smi could not say, the package does
    assert facts.stack().driver == DriverVersion("535.183.01")


def test_version_mismatch_names_both_versions() -> None:
    facts = facts_of(SimHost(driver="580.95.05", loaded_module="535.183.01", driver_state="mismatch",
                             flavor="proprietary", packages={"nvidia-driver-580": "580.95.05-0ubuntu1"}))
    assert facts.driver.status == DriverStatus.VERSION_MISMATCH
    assert facts.driver.loaded_module == "535.183.01"
    assert "kernel module 535.183.01 is loaded but the installed driver is 580.95.05" in facts.problems[0]


def test_hung_and_unknown_nvidia_smi_failures() -> None:
    assert classify_nvidia_smi_failure(124, "")[0] == "error"
    assert "hung" in classify_nvidia_smi_failure(124, "")[1]
    assert classify_nvidia_smi_failure(6, "No devices were found\n")[0] == "no_devices"
    status, message = classify_nvidia_smi_failure(3, "weird failure\n")
    assert status == "error" and "rc 3" in message and "weird failure" in message


def test_missing_libraries_are_reported_precisely() -> None:
    facts = facts_of(SimHost(packages={"nvidia-driver-580-open": "580.159.04-0ubuntu1"}, cuda=None))
    assert facts.cudnn.version is None and "no cudnn package, header or libcudnn.so.9" in (facts.cudnn.missing or "")
    assert facts.nccl.version is None and "libnccl.so.2" in (facts.nccl.missing or "")
    assert facts.cuda.version is None and "no CUDA toolkit" in (facts.cuda.missing or "")
    assert facts.fabric_manager.missing == "no nvidia-fabricmanager package"
    assert facts.problems == []  # missing libraries are facts, not problems


def test_libraries_found_without_packages_via_headers_and_sonames() -> None:
    host = SimHost(packages={}, files={"/usr/include/cudnn_version.h": "#define CUDNN_MAJOR 9\n#define CUDNN_MINOR "
                                       "19\n#define CUDNN_PATCHLEVEL 0\n"},
                   links={"/lib/x86_64-linux-gnu/libnccl.so.2": "/lib/x86_64-linux-gnu/libnccl.so.2.28.9"})
    facts = facts_of(host)
    assert facts.cudnn.version == "9.19.0" and facts.cudnn.source == "/usr/include/cudnn_version.h"
    assert facts.nccl.version == "2.28.9" and facts.nccl.source.endswith("libnccl.so.2.28.9")  # type: ignore[union-attr]


def test_unparsable_version_names_host_and_component() -> None:
    host = SimHost(packages={"libnccl2": "banana"})
    with pytest.raises(FactsError) as err:
        facts_of(host).stack()
    assert "host node" in str(err.value) and "NCCL version 'banana'" in str(err.value)


def test_a_model_nothing_describes_names_host_and_model() -> None:
    facts = facts_of(SimHost(gpu_name="NVIDIA GeForce GTX 480", gpu_count=1, architecture="N/A", compute_cap=""))
    assert facts.gpus[0].compute_capability is None
    with pytest.raises(FactsError) as err:
        facts.gpu_model()
    assert "host node" in str(err.value) and "GTX 480" in str(err.value) and "architecture" in str(err.value)


def test_compute_capability_from_the_real_query_capture() -> None:
    caps = parse_compute_capabilities((CAPTURES / "query-gpu.csv").read_text())
    assert list(caps.values()) == ["9.0"] and next(iter(caps)).startswith("00000000:")
    assert parse_compute_capabilities('Field "compute_cap" is not a valid field to query.\n') == {}


@pytest.mark.parametrize(("name", "architecture", "cap", "arch", "cc"), [
    ("NVIDIA RTX A5000", "Ampere", "8.6", "Ampere", "8.6"),
    ("Quadro P2000", "Pascal", "6.1", "Pascal", "6.1"),
    ("NVIDIA GeForce RTX 3090", "Ampere", "8.6", "Ampere", "8.6"),
    ("Graphics Device", "N/A", "10.0", "Blackwell", "10.0"),  # an engineering sample: the capability names it
    ("NVIDIA RTX A5000", "Ampere", "", "Ampere", "8.0"),  # a driver without compute_cap: the lowest of Ampere
])
def test_models_the_catalogue_lacks_are_described_by_the_host(name: str, architecture: str, cap: str,
                                                               arch: str, cc: str) -> None:
    facts = facts_of(SimHost(gpu_name=name, gpu_count=2, architecture=architecture, compute_cap=cap))
    model = facts.gpu_model()
    assert model is not None and not model.catalogued and model.name == name
    assert (model.architecture, str(model.compute_capability)) == (arch, cc)


@pytest.mark.parametrize(("name", "canonical"), [
    ("NVIDIA A2", "A2"), ("RTX PRO 4500 Blackwell Server Edition", "RTX PRO 4500 Blackwell Server Edition")])
def test_catalogued_models_stay_catalogued(name: str, canonical: str) -> None:
    model = facts_of(SimHost(gpu_name=name, gpu_count=1, architecture="N/A", compute_cap="")).gpu_model()
    assert model is not None and model.catalogued and model.name == canonical


# ---- the kernel module: packaging, DKMS builds, the installed kernels that have one

def modules_tree(root: Path, kernels: dict[str, bytes | None]) -> str:
    """/lib/modules of a host: one folder per installed kernel, with the nvidia.ko DKMS wrote where given (an
    object whose .modinfo section carries the version, as the module's does)."""
    for kernel, module in kernels.items():
        folder = root / kernel / "kernel"
        folder.mkdir(parents=True)
        if module is not None:
            (root / kernel / "updates" / "dkms").mkdir(parents=True)
            (root / kernel / "updates" / "dkms" / "nvidia.ko").write_bytes(module)
    return str(root)


def test_dkms_host_reports_what_dkms_built_for_which_kernel(tmp_path: Path) -> None:
    # DKMS 3 (Ubuntu 24.04): module/version; a build not installed yet; another module's line is not nvidia's
    status = ("nvidia/580.95.05, 6.8.0-45-generic, x86_64: installed\n"
              "nvidia/580.95.05, 6.8.0-48-generic, x86_64: installed\n"
              "nvidia/580.95.05, 6.8.0-49-generic, x86_64: built\n"
              "nvidia/535.183.01: added\n")
    root = modules_tree(tmp_path, {"6.8.0-45-generic": None, "6.8.0-48-generic": None, "6.8.0-49-generic": None})
    host = SimHost(packages={"nvidia-driver-580-open": "580.95.05-0ubuntu1",
                             "nvidia-dkms-580-open": "580.95.05-0ubuntu1"},
                   dkms_status=status, modinfo={"6.8.0-45-generic": "580.95.05", "6.8.0-48-generic": "580.95.05"},
                   modules_root=root)
    facts = facts_of(host)
    assert facts.kernel_modules == KernelModuleFacts(
        packaging="dkms",
        dkms={"580.95.05": {"6.8.0-45-generic": "installed", "6.8.0-48-generic": "installed",
                            "6.8.0-49-generic": "built"}},
        kernels={"6.8.0-45-generic": "580.95.05", "6.8.0-48-generic": "580.95.05", "6.8.0-49-generic": None})
    assert facts.problems == []


def test_older_dkms_lines_and_modules_read_from_their_files(tmp_path: Path) -> None:
    # DKMS 2 (Ubuntu 20.04/22.04): comma-separated module and version; no kmod: the .ko files are read
    status = ("nvidia, 535.183.01, 5.15.0-91-generic, x86_64: installed\n"
              "nvidia, 535.183.01, 5.15.0-101-generic, x86_64: installed (original_module exists)\n"
              "virtualbox, 6.1.50, 5.15.0-91-generic, x86_64: installed\n")
    module = b"\x7fELF\x00srcversion=ABC\x00version=535.183.01\x00license=NVIDIA\x00"
    root = modules_tree(tmp_path, {"5.15.0-101-generic": module, "5.15.0-91-generic": module,
                                   "5.15.0-9-generic": None})
    host = SimHost(driver="535.183.01", flavor="proprietary", packages={"nvidia-dkms-535": "535.183.01-0ubuntu1"},
                   dkms_status=status, modules_root=root)
    modules = facts_of(host).kernel_modules
    assert modules is not None and modules.packaging == "dkms"
    assert modules.dkms == {"535.183.01": {"5.15.0-91-generic": "installed", "5.15.0-101-generic": "installed"}}
    # natural order of releases: -9 before -91 before -101
    assert list(modules.kernels.items()) == [("5.15.0-9-generic", None), ("5.15.0-91-generic", "535.183.01"),
                                             ("5.15.0-101-generic", "535.183.01")]


def test_precompiled_modules_are_told_by_their_package_without_dkms(tmp_path: Path) -> None:
    root = modules_tree(tmp_path, {"6.8.0-48-generic": None})
    host = SimHost(packages={"nvidia-driver-580-server-open": "580.95.05-0ubuntu0.24.04.1",
                             "linux-modules-nvidia-580-server-open-6.8.0-48-generic": "6.8.0-48.48"},
                   modinfo={"6.8.0-48-generic": "580.95.05"}, modules_root=root)
    facts = facts_of(host)
    assert facts.kernel_modules == KernelModuleFacts(packaging="precompiled", dkms=None,
                                                     kernels={"6.8.0-48-generic": "580.95.05"})
    assert "linux-modules-nvidia-580-server-open-6.8.0-48-generic" in facts.packages


def test_no_module_packaging_known_and_a_failing_dkms_is_a_problem() -> None:
    facts = facts_of(SimHost(packages={"nvidia-driver-580": "580.95.05-0ubuntu1"}))
    assert facts.kernel_modules == KernelModuleFacts(packaging=None, dkms=None, kernels={})
    assert facts.problems == []

    class BrokenDkms(SimHost):
        def run(self, cmd: list[str]) -> tuple[int, str, str]:
            if cmd[0] == "dkms":
                return 3, "", "Error! Could not locate dkms.conf file.\n"
            return super().run(cmd)

    facts = facts_of(BrokenDkms(packages={"nvidia-dkms-580": "580.95.05-0ubuntu1"}))
    assert facts.kernel_modules is not None and facts.kernel_modules.dkms is None
    assert facts.problems == ["dkms status failed (rc 3): Error! Could not locate dkms.conf file."]


def test_kernel_module_values_from_a_host_are_validated() -> None:
    host = SimHost()
    raw = collect(host.run, host.read, host.listdir, host.resolve, host.modules_root)
    raw["kernel_modules"] = {"packaging": "dkms", "dkms": None, "kernels": {"6.8.0-48-generic\x1b[2J": None}}
    with pytest.raises(FactsError) as err:
        parse_host_facts("gpu-07", "2026-11-25T00:00:00+00:00", raw)
    assert "host gpu-07" in str(err.value) and "kernel_modules" in str(err.value)
    raw["kernel_modules"] = {"packaging": "kmod", "dkms": None, "kernels": {}}
    with pytest.raises(FactsError):
        parse_host_facts("gpu-07", "2026-11-25T00:00:00+00:00", raw)


def test_snapshots_from_before_kernel_modules_still_load() -> None:
    snap = load_snapshot(Path(__file__).parents[1] / "inventories" / "example" / "facts.json")
    assert snap.hosts and all(h.kernel_modules is None for h in snap.hosts)


def test_the_index_keeps_the_running_kernels_line_at_its_release_and_newer() -> None:
    from orchestrator.hostside.collector import kernel_packages

    names = ["linux-image-6.8.0-90-generic", "linux-image-6.8.0-45-generic", "linux-headers-6.8.0-100-generic",
             "linux-image-6.8.0-90-aws", "linux-modules-6.8.0-48-generic", "linux-image-generic", "nvidia-driver-580"]
    assert kernel_packages(names, "6.8.0-48-generic") == [
        "linux-image-6.8.0-90-generic", "linux-headers-6.8.0-100-generic", "linux-modules-6.8.0-48-generic"]
    # a kernel without an ABI number keeps its flavour too; a release the collector cannot read indexes none
    assert kernel_packages(["linux-image-6.18.45-fc-v1", "linux-image-6.18.43-fc-v1"], "6.18.44-fc-v1") == [
        "linux-image-6.18.45-fc-v1"]
    assert kernel_packages(names, "") == []
