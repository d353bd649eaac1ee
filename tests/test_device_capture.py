"""What the collector found on a real H100 machine (tests/support/device_collect.sh on the device tool)."""

from __future__ import annotations

import json
from pathlib import Path

from orchestrator.model.facts import FactsSnapshot, HostFacts
from orchestrator.model.stack import KernelModuleFlavor
from orchestrator.model.versions import CudaVersion, CudnnVersion, DriverVersion, NcclVersion

DEVICE = Path(__file__).parent / "fixtures" / "device-h100"


def test_ansible_collected_snapshot_from_real_h100() -> None:
    data = json.loads((DEVICE / "device-ansible.json").read_text())
    data.pop("drift")
    snapshot = FactsSnapshot.model_validate(data)
    [host] = snapshot.hosts
    assert snapshot.unreachable == [] and host.problems == []
    assert host.gpu_model() is not None and host.gpu_model().name == "H100"  # type: ignore[union-attr]
    stack = host.stack()
    assert stack.driver == DriverVersion("580.159.04") and stack.kernel_module == KernelModuleFlavor.OPEN
    assert host.driver.cuda_driver_api == "13.0" and host.driver.loaded_module == "580.159.04"
    assert stack.cuda == CudaVersion("13.0.88")
    # the system packages differ from the cuDNN 9.19 / NCCL 2.28.9 that PyTorch's wheels bundle there
    assert stack.cudnn == CudnnVersion("9.14.0.64") and stack.nccl == NcclVersion("2.28.3")
    assert stack.nccl.cuda == CudaVersion("13.0")  # type: ignore[union-attr]
    assert "libnccl2" in host.held_packages and "libcudnn9-cuda-13" in host.held_packages


def test_local_and_ansible_paths_agree_on_real_hardware() -> None:
    local = HostFacts.model_validate(json.loads((DEVICE / "device-local.json").read_text()))
    remote = json.loads((DEVICE / "device-ansible.json").read_text())["hosts"][0]
    assert local.stack() == HostFacts.model_validate(remote).stack()
    assert local.gpus == HostFacts.model_validate(remote).gpus
