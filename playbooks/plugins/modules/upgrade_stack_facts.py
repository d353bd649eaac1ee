#!/usr/bin/python
"""Ansible module: report this host's NVIDIA GPU software stack as facts (``ansible_facts.gpu_stack``)."""

from __future__ import annotations

DOCUMENTATION = r"""
module: upgrade_stack_facts
short_description: Collect the NVIDIA GPU software stack of a host
description:
  - Reads nvidia-smi (XML), /proc/driver/nvidia/version, the CUDA toolkit's version.json and nvcc,
    dpkg or rpm package versions of cuDNN, NCCL, fabric manager, DCGM and the container toolkit,
    the kernel release and /etc/os-release.
  - The nvidia kernel module in C(gpu_stack.kernel_modules) (module_utils upgrade_kernel_modules, which
    upgrade_boot_kernel uses too), with its packaging (precompiled or dkms, from the installed packages),
    C(dkms status nvidia) where DKMS is installed, and each installed kernel's module version (modinfo, else the
    nvidia.ko under /lib/modules/KERNEL).
  - Never fails because of a GPU problem; a missing driver, nvidia-smi failing or a driver/library
    version mismatch are reported in C(gpu_stack.driver.status) and C(gpu_stack.problems).
options:
  command_timeout:
    description: Seconds each probe command may take.
    type: int
    default: 60
"""

RETURN = r"""
ansible_facts:
  description: C(gpu_stack), the collected facts (see orchestrator/model/facts.py HostFacts).
  returned: always
  type: dict
"""

import os

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.gpu_fleet.upgrade.plugins.module_utils.upgrade_stack_collector import collect


def main():
    module = AnsibleModule(argument_spec={"command_timeout": {"type": "int", "default": 60}},
                           supports_check_mode=True)
    timeout = module.params["command_timeout"]
    # A GPU in a bad state can hang nvidia-smi; coreutils' timeout turns that into rc 124.
    timeout_bin = module.get_bin_path("timeout")

    def run(cmd):
        path = cmd[0] if cmd[0].startswith("/") else module.get_bin_path(cmd[0])
        if not path or not os.path.exists(path):
            return 127, "", "%s: command not found" % cmd[0]
        prefix = [timeout_bin, str(timeout)] if timeout_bin else []
        try:
            return module.run_command(prefix + [path] + cmd[1:], check_rc=False,
                                      environ_update={"LC_ALL": "C"}, handle_exceptions=False)
        except OSError as exc:
            return 126, "", "%s: %s" % (cmd[0], exc)

    def read(path):
        try:
            with open(path, encoding="utf-8", errors="replace") as fh:
                return fh.read()
        except OSError:
            return None

    def listdir(path):
        try:
            return os.listdir(path)
        except OSError:
            return []

    def resolve(path):
        return os.path.realpath(path) if os.path.exists(path) else None

    facts = collect(run, read, listdir, resolve)
    module.exit_json(changed=False, ansible_facts={"gpu_stack": facts})


if __name__ == "__main__":
    main()
