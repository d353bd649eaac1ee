from __future__ import annotations

import pytest
from pydantic import ValidationError

from orchestrator.errors import UnknownGpuError
from orchestrator.model.gpus import ComputeCapability, catalogue, resolve_gpu
from orchestrator.model.stack import Connection, Fleet, Host


@pytest.mark.parametrize(
    ("name", "model", "arch", "cc"),
    [
        ("H100", "H100", "Hopper", "9.0"),
        ("NVIDIA H100 80GB HBM3", "H100", "Hopper", "9.0"),
        ("a100", "A100", "Ampere", "8.0"),
        ("NVIDIA A100-SXM4-80GB", "A100", "Ampere", "8.0"),
        ("Tesla V100-SXM2-32GB", "V100", "Volta", "7.0"),
        ("NVIDIA A10G", "A10", "Ampere", "8.6"),
        ("NVIDIA GH200 480GB", "GH200", "Hopper", "9.0"),
        ("NVIDIA H200", "H200", "Hopper", "9.0"),
        ("NVIDIA L40S", "L40S", "Ada Lovelace", "8.9"),
        ("NVIDIA B200", "B200", "Blackwell", "10.0"),
        ("NVIDIA RTX PRO 6000 Blackwell Server Edition", "RTX PRO 6000 Blackwell Server Edition", "Blackwell", "12.0"),
        ("NVIDIA RTX PRO 6000 Blackwell Max-Q Workstation Edition", "RTX PRO 6000 Blackwell Workstation Edition",
         "Blackwell", "12.0"),
        ("NVIDIA RTX PRO 4500 Blackwell Server Edition", "RTX PRO 4500 Blackwell Server Edition", "Blackwell", "12.0"),
        ("NVIDIA A2", "A2", "Ampere", "8.6"),
    ],
)
def test_names_people_and_nvidia_smi_use(name: str, model: str, arch: str, cc: str) -> None:
    gpu = resolve_gpu(name)
    assert (gpu.name, gpu.architecture, str(gpu.compute_capability)) == (model, arch, cc)


def test_similar_names_do_not_collide() -> None:
    assert resolve_gpu("A10").name == "A10"
    assert resolve_gpu("A100").name == "A100"
    assert resolve_gpu("H20").name == "H20"
    assert resolve_gpu("GH200").name == "GH200"


def test_unknown_gpu_is_one_clear_error() -> None:
    with pytest.raises(UnknownGpuError) as err:
        resolve_gpu("NVIDIA GeForce GTX 480")
    assert "unknown GPU model" in str(err.value) and "GTX 480" in str(err.value)


def test_catalogue_is_consistent() -> None:
    names = [m.name for m in catalogue()]
    assert len(names) == len(set(names))
    assert ComputeCapability.parse("7.5") < ComputeCapability.parse("8.0")
    for model in catalogue():
        assert resolve_gpu(model.name) == model


def _host(name: str, gpu: str = "H100") -> Host:
    return Host.model_validate({"name": name, "connection": {"address": "127.0.0.1"}, "pool": "p",
                                "gpu": gpu, "gpu_count": 8})


def test_host_validates_gpu_names_and_serialises_canonical() -> None:
    host = _host("n1", "NVIDIA H100 80GB HBM3")
    assert host.model_dump(mode="json")["gpu"] == "H100"
    assert host.scheduler_node == "n1"
    with pytest.raises(ValidationError):
        _host("n2", "Voodoo 3")


def test_fleet_refuses_duplicate_names_and_groups_pools() -> None:
    with pytest.raises(ValidationError) as err:
        Fleet(hosts=(_host("a"), _host("a")))
    assert "duplicate host names: a" in str(err.value)
    fleet = Fleet(hosts=(_host("b"), _host("a")))
    assert [h.name for h in fleet.pools["p"]] == ["a", "b"]


def test_host_is_strict() -> None:
    with pytest.raises(ValidationError):
        Host.model_validate({"name": "x", "connection": Connection(address="127.0.0.1"), "pool": "p", "gpu": "H100",
                             "gpu_count": 8, "rack": "r1"})
