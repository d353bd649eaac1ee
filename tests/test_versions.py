from __future__ import annotations

import pytest
from pydantic import ValidationError

from orchestrator.errors import InputError, VersionError
from orchestrator.model.stack import SoftwareStack
from orchestrator.model.versions import (
    ComponentVersion,
    CudaVersion,
    CudnnVersion,
    DriverVersion,
    KernelVersion,
    NcclVersion,
)


def test_driver_versions_compare_numerically_and_know_their_branch() -> None:
    assert DriverVersion("580.159.04") > DriverVersion("580.95.05") > DriverVersion("535.183.01")
    assert DriverVersion("580.159.04").branch == "R580"
    assert DriverVersion("550.54") == DriverVersion("550.54.0")
    assert DriverVersion.from_package("580.95.05-0ubuntu1") == DriverVersion("580.95.05")
    assert DriverVersion.from_package("3:580.95.05-1.el9") == DriverVersion("580.95.05")


@pytest.mark.parametrize("text", ["58.1", "580", "v580.1.2", "580.1.2.3", "", "latest"])
def test_bad_driver_versions_name_kind_and_text(text: str) -> None:
    with pytest.raises(VersionError) as err:
        DriverVersion(text)
    assert "driver version" in str(err.value) and repr(text) in str(err.value)
    assert isinstance(err.value, ValueError) and isinstance(err.value, InputError)


def test_cuda_versions_two_and_three_part() -> None:
    assert CudaVersion("12.8") == CudaVersion("12.8.0")
    assert CudaVersion("12.8.1") > CudaVersion("12.8")
    assert CudaVersion("12.10") > CudaVersion("12.9")
    assert CudaVersion("13.0") > CudaVersion("12.9.1")
    assert CudaVersion.from_int(13000) == CudaVersion("13.0")
    assert CudaVersion.from_int(12080) == CudaVersion("12.8")
    assert CudaVersion("12.8.1").major_minor == CudaVersion("12.8")


def test_cudnn_from_package_and_torch_integer() -> None:
    assert CudnnVersion("9.19.0.56") == CudnnVersion("9.19.0")
    assert CudnnVersion("9.19.0.56") > CudnnVersion("9.5.1.17-1")
    assert CudnnVersion("8.9.7.29-1+cuda12.2").major == 8
    assert CudnnVersion.from_int(91900) == CudnnVersion("9.19.0")
    assert CudnnVersion.from_int(8907) == CudnnVersion("8.9.7")


def test_nccl_plain_and_debian_with_cuda_build() -> None:
    plain = NcclVersion("2.28.9")
    deb = NcclVersion("2.21.5-1+cuda12.4")
    assert plain > deb
    assert deb.cuda == CudaVersion("12.4") and plain.cuda is None
    assert NcclVersion("2.21.5-1+cuda12.4") == NcclVersion("2.21.5")
    assert NcclVersion.from_int(22809) == plain
    with pytest.raises(VersionError):
        NcclVersion("2.21")


def test_kernel_versions_order_by_abi_number() -> None:
    assert KernelVersion("6.8.0-48-generic") > KernelVersion("6.8.0-45-generic")
    assert KernelVersion("6.8.0-48-generic").flavour == "generic"
    assert KernelVersion("5.14.0-427.13.1.el9_4.x86_64") < KernelVersion("5.14.0-503.11.1.el9_5.x86_64")
    assert KernelVersion("6.18.44-fc-v657-gpu").key[:3] == (6, 18, 44)
    with pytest.raises(VersionError):
        KernelVersion("generic")


def test_component_versions_strip_epoch_and_revision() -> None:
    assert ComponentVersion("1:4.2.3-1") == ComponentVersion("4.2.3")
    assert ComponentVersion("1.17.8-1") > ComponentVersion("1.14.6-1")
    assert ComponentVersion("1:4.2.3-1").text == "1:4.2.3-1"


def test_versions_in_models_round_trip_as_strings() -> None:
    stack = SoftwareStack.model_validate({"driver": "580.159.04", "cuda": "12.8", "nccl": "2.21.5-1+cuda12.4"})
    assert stack.driver == DriverVersion("580.159.04")
    dumped = stack.model_dump(mode="json")
    assert dumped["driver"] == "580.159.04" and dumped["nccl"] == "2.21.5-1+cuda12.4"
    assert SoftwareStack.model_validate(dumped) == stack


def test_yaml_float_cuda_is_refused_with_a_hint() -> None:
    with pytest.raises(ValidationError) as err:
        SoftwareStack.model_validate({"cuda": 12.10})
    assert "YAML" in str(err.value)


def test_stack_rejects_unknown_keys() -> None:
    with pytest.raises(ValidationError) as err:
        SoftwareStack.model_validate({"driver": "580.159.04", "cudaa": "12.8"})
    assert "cudaa" in str(err.value)


@pytest.mark.parametrize(("cls", "text", "upstream"), [
    (NcclVersion, "2.18.5-1-2", (2, 18, 5)),  # Ubuntu archive's libnccl2
    (NcclVersion, "2.21.5-1+cuda12.4", (2, 21, 5)),
    (NcclVersion, "2.18.5-1.el9", (2, 18, 5)),
    (DriverVersion, "3:440.64.00-1.el7", (440, 64, 0)),  # nvidia-driver-latest-dkms-cuda on RHEL 7
    (DriverVersion, "580.95.05-0ubuntu0.24.04.1", (580, 95, 5)),
    (DriverVersion, "535.183.01-0ubuntu0~gpu22.04.1", (535, 183, 1)),
    (CudaVersion, "10.2.89-1", (10, 2, 89)),  # cuda on RHEL
    (CudaVersion, "12.4.131~rc1-1", (12, 4, 131)),
    (CudnnVersion, "8.9.7.29-1+cuda12.2", (8, 9, 7)),
    (ComponentVersion, "1:4.2.3-1.el9", (4, 2, 3)),
    (ComponentVersion, "1.17.8~rc.1-1", (1, 17, 8)),
])
def test_package_version_strings_parse_to_their_release(cls: type, text: str, upstream: tuple[int, ...]) -> None:
    assert cls(text).key == upstream and str(cls(text)) == text
