#!/usr/bin/python
"""Ansible module: run the gates on a GPU host and return one structured result (``gate``)."""

from __future__ import annotations

DOCUMENTATION = r"""
module: upgrade_gate
short_description: Prove a GPU host runs GPU work after a change - CUDA probe, health, versions, Xid, DCGM, workload
description:
  - Runs orchestrator/hostside/gate.py (shipped as module_utils), the code of C(upgrade gate --local).
  - The CUDA probe through libcuda.so.1 (PTX JIT, a checked kernel launch, pinned and device bandwidth, FP32 FMA),
    the toolkit's libcudart against the driver, cuDNN's version; NCCL's all-reduce when asked.
  - Versions as planned - nvidia-smi's driver on every GPU, dpkg versions (and holds) of the listed packages.
  - nvidia-smi health fields, Xid errors in the kernel log since C(since), C(dcgmi diag -r LEVEL -j) where DCGM is
    installed, and the pool's workload gate.
  - Each check has a timeout; never fails because of what it finds - C(gate.passed) and C(gate.problems) say it.
options:
  expect_driver: {description: Driver version every GPU must report ("" skips the check)., type: str, default: ""}
  expect_packages: {description: "Package name -> exact version.", type: dict, default: {}}
  expect_held: {description: The expected packages must also be held., type: bool, default: true}
  diag_level: {description: dcgmi diag level (0 skips it)., type: int, default: 1}
  max_temperature_c: {description: Hotter GPUs fail the gate., type: float, default: 85}
  bad_clock_event_reasons: {description: Clock event reasons that fail the gate., type: list, elements: str, default: []}
  command_timeout: {description: Seconds dcgmi diag may take., type: int, default: 1800}
  probe_timeout: {description: Seconds each CUDA check may take (a hung GPU fails the gate)., type: int, default: 120}
  cuda_version: {description: "Planned CUDA (X.Y) whose libcudart.so.X is checked ('' - the driver's).", type: str, default: ""}
  need_cudnn: {description: cuDNN must load., type: bool, default: false}
  nccl: {description: Run the NCCL all-reduce over the host's GPUs., type: bool, default: false}
  since: {description: Xid errors since this epoch second (0 - since boot)., type: int, default: 0}
  workload: {description: "The pool's workload gate - command, image, runtime, timeout_s, expect_rc.", type: dict, default: {}}
  library_dirs: {description: More folders to look for CUDA libraries in., type: list, elements: str, default: []}
"""

RETURN = r"""
gate:
  description: passed, problems, probe, health, versions, xid, diag, workload, figures, seconds.
  returned: always
  type: dict
"""

from ansible.module_utils.basic import AnsibleModule
from ansible_collections.gpu_fleet.upgrade.plugins.module_utils.upgrade_host_gate import run_gate


def main():
    module = AnsibleModule(argument_spec={
        "expect_driver": {"type": "str", "default": ""},
        "expect_packages": {"type": "dict", "default": {}},
        "expect_held": {"type": "bool", "default": True},
        "diag_level": {"type": "int", "default": 1},
        "max_temperature_c": {"type": "float", "default": 85.0},
        "bad_clock_event_reasons": {"type": "list", "elements": "str", "default": []},
        "command_timeout": {"type": "int", "default": 1800},
        "probe_timeout": {"type": "int", "default": 120},
        "cuda_version": {"type": "str", "default": ""},
        "need_cudnn": {"type": "bool", "default": False},
        "nccl": {"type": "bool", "default": False},
        "since": {"type": "int", "default": 0},
        "workload": {"type": "dict", "default": {}},
        "library_dirs": {"type": "list", "elements": "str", "default": []},
    }, supports_check_mode=True)
    p = module.params
    gate = run_gate(
        expect_driver=p["expect_driver"] or None, expect_packages=p["expect_packages"], expect_held=p["expect_held"],
        cuda_version=p["cuda_version"] or None, need_cudnn=p["need_cudnn"], since=p["since"] or None,
        workload=p["workload"] or None, timeout=p["probe_timeout"], diag_timeout=p["command_timeout"],
        max_temperature_c=p["max_temperature_c"], extra_dirs=p["library_dirs"], diag_level=p["diag_level"],
        nccl=p["nccl"], bad_clock_event_reasons=p["bad_clock_event_reasons"] or None)
    module.exit_json(changed=False, gate=gate)


if __name__ == "__main__":
    main()
