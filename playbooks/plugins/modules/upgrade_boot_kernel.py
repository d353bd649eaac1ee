#!/usr/bin/python
"""Ansible module: before a reboot, does the kernel the host boots next have the planned driver's module?"""

from __future__ import annotations

DOCUMENTATION = r"""
module: upgrade_boot_kernel
short_description: Check that the kernel booted next has an NVIDIA module of the planned driver
description:
  - Finds the kernel the host boots next (grubby's default, else the newest /boot/vmlinuz-*, else the running
    kernel), the version of its nvidia module (modinfo -k, else the nvidia.ko file under /lib/modules/KERNEL),
    DKMS's status and whether the module comes precompiled or from DKMS (installed packages).
  - Runs orchestrator/hostside/kernel_modules.py with the gate's command runner (both shipped as module_utils).
    Read-only; runs in check mode.
options:
  host:
    description: The host's inventory name, for the one line that names what is missing.
    type: str
    required: true
  expect_driver:
    description: Upstream driver version the module must have, e.g. 580.95.05.
    type: str
    required: true
  expect_kernel:
    description: The kernel release the host must boot next (uname -r); empty, any kernel.
    type: str
    default: ""
"""

RETURN = r"""
kernel:
  description: Release of the kernel booted next.
  returned: always
  type: str
module_version:
  description: Version of that kernel's nvidia module, null when it has none.
  returned: always
  type: str
problem:
  description: One line naming the host, the kernel and what is missing; null when the module is there.
  returned: always
  type: str
"""

from ansible.module_utils.basic import AnsibleModule
from ansible_collections.gpu_fleet.upgrade.plugins.module_utils.upgrade_host_gate import run_command
from ansible_collections.gpu_fleet.upgrade.plugins.module_utils.upgrade_kernel_modules import check_boot_kernel

COMMAND_TIMEOUT_S = 60


def main():
    module = AnsibleModule(argument_spec={"host": {"type": "str", "required": True},
                                          "expect_driver": {"type": "str", "required": True},
                                          "expect_kernel": {"type": "str", "default": ""}},
                           supports_check_mode=True)
    found = check_boot_kernel(module.params["host"], module.params["expect_driver"],
                              lambda argv: run_command(argv, COMMAND_TIMEOUT_S),
                              expect_kernel=module.params["expect_kernel"])
    module.exit_json(changed=False, **found)


if __name__ == "__main__":
    main()
