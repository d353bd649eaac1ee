#!/usr/bin/python
"""Ansible module: list the processes that hold a GPU (open /dev/nvidia* or a mapped CUDA/NVML library)."""

from __future__ import annotations

DOCUMENTATION = r"""
module: upgrade_processes
short_description: List the processes that use an NVIDIA GPU on this host
description:
  - Scans /proc for processes with an open NVIDIA device node (/dev/nvidia0, /dev/nvidiactl, /dev/nvidia-uvm, ...)
    or a mapped or open CUDA driver / NVML library (libcuda.so, libnvidia-ml.so), as fuser or lsof would.
  - A drain waits until this list is empty, so that no process keeps the kernel module loaded across the upgrade.
options:
  ignore_names:
    description: Process names (comm) that never count, e.g. monitoring agents that let go on their own.
    type: list
    elements: str
    default: []
"""

RETURN = r"""
processes:
  description: One entry per process, with pid, comm and the GPU paths it holds.
  returned: always
  type: list
  elements: dict
count:
  description: Number of processes.
  returned: always
  type: int
"""

import os
import re

from ansible.module_utils.basic import AnsibleModule

GPU_PATH = re.compile(r"^(/dev/nvidia(\d+|ctl|-uvm|-uvm-tools|-modeset|-caps/.*)|.*/lib(cuda|nvidia-ml)\.so(\.[\d.]+)?)$")


def held_paths(pid):
    """GPU paths one process holds open or mapped (empty when it is gone or unreadable)."""
    found = set()
    fd_dir = "/proc/%s/fd" % pid
    try:
        for fd in os.listdir(fd_dir):
            try:
                target = os.readlink(os.path.join(fd_dir, fd))
            except OSError:
                continue
            if GPU_PATH.match(target):
                found.add(target)
    except OSError:
        pass
    try:
        with open("/proc/%s/maps" % pid, encoding="utf-8", errors="replace") as fh:
            for line in fh:
                parts = line.split(None, 5)
                if len(parts) == 6 and GPU_PATH.match(parts[5].strip()):
                    found.add(parts[5].strip())
    except OSError:
        pass
    return sorted(found)


def main():
    module = AnsibleModule(argument_spec={"ignore_names": {"type": "list", "elements": "str", "default": []}},
                           supports_check_mode=True)
    me = os.getpid()
    ignore = set(module.params["ignore_names"])
    procs = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit() or int(entry) in (me, os.getppid()):
            continue
        paths = held_paths(entry)
        if not paths:
            continue
        try:
            with open("/proc/%s/comm" % entry) as fh:
                comm = fh.read().strip()
        except OSError:
            continue
        if comm in ignore:
            continue
        procs.append({"pid": int(entry), "comm": comm, "paths": paths})
    procs.sort(key=lambda p: p["pid"])
    module.exit_json(changed=False, processes=procs, count=len(procs))


if __name__ == "__main__":
    main()
